"""Sinkhorn sharded over torch.distributed ranks: two gloo processes on 127.0.0.1 equal one process."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch

from gloo_ranks import run_ranks
from otmetrics import PointCloud, sinkhorn, sinkhorn_divergence


WORKER = textwrap.dedent("""
    import json, os, sys
    import numpy as np
    import torch
    import torch.distributed as dist
    from otmetrics import PointCloud, sinkhorn, sinkhorn_divergence

    rank, world = int(sys.argv[1]), int(sys.argv[2])
    port, data_path, out_path = sys.argv[3], sys.argv[4], sys.argv[5]
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    group = dist.group.WORLD
    d = np.load(data_path)
    cut = int(d["cut"])
    rows = slice(0, cut) if rank == 0 else slice(cut, None)
    x = torch.tensor(d["x"][rows], requires_grad=True)
    y = torch.tensor(d["y"], requires_grad=True)
    a, b = torch.tensor(d["a"][rows]), torch.tensor(d["b"])
    out = {}

    res = sinkhorn(a, b, PointCloud(x, y, online=True), 0.3, tol=1e-12, process_group=group)
    res.objective.backward()
    out["sinkhorn"] = dict(f=res.potentials[0].tolist(), g=res.potentials[1].tolist(), cost=float(res.cost),
                           objective=float(res.objective.detach()), n_iter=int(res.n_iter),
                           error=float(res.marginal_error), converged=bool(res.converged),
                           plan=res.plan.tolist(), gx=x.grad.tolist(), gy=y.grad.tolist())
    x.grad = y.grad = None
    div = sinkhorn_divergence(x, y, 0.3, a=a, b=b, tol=1e-12, process_group=group)
    div.backward()
    out["divergence"] = dict(value=float(div.detach()), gx=x.grad.tolist(), gy=y.grad.tolist())
    # weight gradients, in every direction (the rescaling of b to the global mass of a is in the graph)
    aw = torch.tensor(d["a"][rows], requires_grad=True)
    bw = torch.tensor(d["b"], requires_grad=True)
    res = sinkhorn(aw, bw, PointCloud(x.detach(), y.detach(), online=True), 0.3, tol=1e-12,
                   process_group=group)
    res.objective.backward()
    out["weights"] = dict(ga=aw.grad.tolist(), gb=bw.grad.tolist())
    # a batch of two problems, uniform weights, a cost that is not the squared distance
    xb = torch.tensor(d["xb"][:, rows])
    yb = torch.tensor(d["yb"])
    batch = sinkhorn(None, None, PointCloud(xb, yb, p=1, online=True), 0.2, tol=1e-12, process_group=group)
    out["batch"] = dict(cost=batch.cost.tolist(), f=batch.potentials[0].tolist(),
                        n_iter=batch.n_iter.tolist())
    # one measure: the divergence is exactly 0
    same = sinkhorn_divergence(torch.tensor(d["y"][rows]), torch.tensor(d["y"]), 0.3, process_group=group)
    out["same"] = float(same)
    # bad input: names of the arguments that differ across the ranks
    errors = {}
    for name, call in (
        ("y", lambda: sinkhorn(a, b, PointCloud(x.detach(), y.detach() + 1e-9 * rank, online=True), 0.3,
                               process_group=group)),
        ("eps", lambda: sinkhorn(a, b, PointCloud(x.detach(), y.detach(), online=True), 0.3 + rank,
                                 process_group=group)),
        ("cost", lambda: sinkhorn(a, b, torch.ones(len(a), len(b), dtype=torch.float64), 0.3,
                                  process_group=group)),
    ):
        try:
            call()
            errors[name] = "no error"
        except ValueError as e:
            errors[name] = str(e)
    out["errors"] = errors
    dist.barrier()
    dist.destroy_process_group()
    with open(out_path, "w") as fh:
        json.dump(out, fh)
    sys.stdout.flush()
    os._exit(0)  # skip the interpreter's teardown, where gloo's threads occasionally abort
""")


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available")
    tmp = tmp_path_factory.mktemp("sharded")
    rng = np.random.default_rng(0)
    data = dict(x=rng.normal(size=(30, 2)), y=rng.normal(size=(25, 2)) + 0.5, cut=13,
                xb=rng.normal(size=(2, 30, 3)), yb=rng.normal(size=(2, 20, 3)) * 1.5)
    a, b = rng.random(30) + 0.1, rng.random(25) + 0.1
    data.update(a=a / a.sum(), b=b / b.sum())
    np.savez(tmp / "data.npz", **data)
    (tmp / "worker.py").write_text(WORKER)
    return data, run_ranks(tmp / "worker.py", tmp / "data.npz", tmp, timeout=300)


def test_two_gloo_processes_equal_one_process(two_ranks):
    data, outs = two_ranks
    x = torch.tensor(data["x"], requires_grad=True)
    y = torch.tensor(data["y"], requires_grad=True)
    a, b = torch.tensor(data["a"]), torch.tensor(data["b"])
    ref = sinkhorn(a, b, PointCloud(x, y, online=True), 0.3, tol=1e-12)
    ref.objective.backward()
    runs = [o["sinkhorn"] for o in outs]
    # each rank: its rows of f and of the plan, the whole g; global values and diagnostics, equal on all
    f = np.concatenate([r["f"] for r in runs])
    np.testing.assert_allclose(f, ref.potentials[0].numpy(), rtol=0, atol=1e-10)
    plan = np.concatenate([r["plan"] for r in runs])
    np.testing.assert_allclose(plan, ref.plan.numpy(), rtol=0, atol=1e-12)
    gx = np.concatenate([r["gx"] for r in runs])
    np.testing.assert_allclose(gx, x.grad.numpy(), rtol=0, atol=1e-10)
    for r in runs:
        np.testing.assert_allclose(r["g"], ref.potentials[1].numpy(), rtol=0, atol=1e-10)
        np.testing.assert_allclose(r["gy"], y.grad.numpy(), rtol=0, atol=1e-10)  # the full gradient
        assert r["cost"] == pytest.approx(float(ref.cost), abs=1e-10)
        assert r["objective"] == pytest.approx(float(ref.objective.detach()), abs=1e-10)
        assert r["n_iter"] == ref.n_iter and r["converged"] and r["error"] <= 1e-12
    assert runs[0]["cost"] == runs[1]["cost"] and runs[0]["g"] == runs[1]["g"]  # bit for bit


def test_sharded_weight_gradients_equal_one_process(two_ranks):
    data, outs = two_ranks
    a = torch.tensor(data["a"], requires_grad=True)
    b = torch.tensor(data["b"], requires_grad=True)
    x, y = torch.tensor(data["x"]), torch.tensor(data["y"])
    sinkhorn(a, b, PointCloud(x, y, online=True), 0.3, tol=1e-12).objective.backward()
    runs = [o["weights"] for o in outs]
    np.testing.assert_allclose(np.concatenate([r["ga"] for r in runs]), a.grad.numpy(), rtol=0, atol=1e-9)
    for r in runs:  # b is replicated: every rank holds its whole gradient
        np.testing.assert_allclose(r["gb"], b.grad.numpy(), rtol=0, atol=1e-9)
    # and the one-process gradient is right where the mass changes (scaling a and b together)
    t = 1e-6
    plus = sinkhorn(data["a"] * (1 + t), data["b"] * (1 + t), PointCloud(data["x"], data["y"], online=True),
                    0.3, tol=1e-13).objective
    minus = sinkhorn(data["a"] * (1 - t), data["b"] * (1 - t), PointCloud(data["x"], data["y"], online=True),
                     0.3, tol=1e-13).objective
    directional = float(a.grad @ a.detach() + b.grad @ b.detach())
    assert directional == pytest.approx((plus - minus) / (2 * t), rel=1e-5)


def test_sharded_divergence_and_its_gradients(two_ranks):
    data, outs = two_ranks
    x = torch.tensor(data["x"], requires_grad=True)
    y = torch.tensor(data["y"], requires_grad=True)
    a, b = torch.tensor(data["a"]), torch.tensor(data["b"])
    value = sinkhorn_divergence(x, y, 0.3, a=a, b=b, tol=1e-12)
    value.backward()
    runs = [o["divergence"] for o in outs]
    np.testing.assert_allclose(np.concatenate([r["gx"] for r in runs]), x.grad.numpy(), rtol=0, atol=1e-10)
    for r in runs:
        assert r["value"] == pytest.approx(float(value.detach()), abs=1e-10)
        np.testing.assert_allclose(r["gy"], y.grad.numpy(), rtol=0, atol=1e-10)
    assert [o["same"] for o in outs] == [0.0, 0.0]


def test_sharded_batch_with_another_cost(two_ranks):
    data, outs = two_ranks
    ref = sinkhorn(None, None, PointCloud(data["xb"], data["yb"], p=1, online=True), 0.2, tol=1e-12)
    np.testing.assert_allclose(outs[0]["batch"]["cost"], ref.cost, rtol=0, atol=1e-10)
    f = np.concatenate([o["batch"]["f"] for o in outs], axis=1)
    np.testing.assert_allclose(f, ref.potentials[0], rtol=0, atol=1e-10)
    assert outs[1]["batch"]["n_iter"] == ref.n_iter.tolist()


def test_ranks_that_disagree_are_told_which_argument(two_ranks):
    _, outs = two_ranks
    for o in outs:
        assert o["errors"]["y"].startswith("y: the ranks hold different values")
        assert o["errors"]["eps"].startswith("eps: the ranks hold different values")
        assert o["errors"]["cost"].startswith("process_group: needs a PointCloud")
