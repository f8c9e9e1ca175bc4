"""The public API of otmetrics 0.1 keeps working, and the 0.2 conventions hold.

``PUBLIC_0_1`` lists every public name of 0.1 by the module users could import it from (taken from
the 0.1 modules' ``__all__``). Each must resolve: flat names from ``otmetrics``; names of the moved
modules from their 0.1 paths (with a DeprecationWarning that names the new place) and from their new
modules; names of the modules that did not move (critic, testing, demo, cli, divergences) without
any warning.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

import otmetrics

PUBLIC_0_1 = {
    "otmetrics": [
        "Certificate", "ConvergenceWarning", "FID", "FIDInceptionV3", "GaussianStats", "InceptionScore", "KID",
        "MMD", "NumericalWarning", "OTMetricsWarning", "OTResult", "PointCloud", "SinkhornResult", "c_transform",
        "certify", "cost_matrix", "dual_value", "emd", "entropy", "frechet_distance", "image_features",
        "inception_score", "iter_image_features", "js_distance", "js_divergence", "kid", "kl_divergence", "mmd",
        "pairwise_distances", "sinkhorn", "sinkhorn_divergence", "total_variation", "wasserstein",
        "wasserstein_1d",
    ],
    # moved in 0.2: stand-ins with a DeprecationWarning
    "otmetrics.costs": ["METRICS", "PointCloud", "cost_matrix", "pairwise_distances", "point_pair"],
    "otmetrics.exact": ["BACKENDS", "OTResult", "emd", "wasserstein"],
    "otmetrics.certificate": ["Certificate", "c_transform", "certify", "dual_value", "stack_certificates"],
    "otmetrics.oned": ["wasserstein_1d"],
    "otmetrics.sinkhorn": ["SinkhornResult", "sinkhorn", "sinkhorn_divergence"],
    "otmetrics.softmin": ["DenseSoftMin", "PointCloudSoftMin", "SoftMin", "block_elements", "exp_floor",
                          "soft_c_transform"],
    "otmetrics.gaussian": ["GaussianStats", "frechet_distance"],
    "otmetrics.kernels": ["ESTIMATORS", "KERNELS", "kernel_matrix", "kid", "median_bandwidth", "mmd"],
    "otmetrics.inception_score": ["inception_score"],
    "otmetrics.metrics": ["FID", "InceptionScore", "KID", "MMD"],
    "otmetrics.inception": [
        "CACHE_ENV", "FEATURE_DIMS", "FIDInceptionV3", "FID_WEIGHTS_FILENAME", "FID_WEIGHTS_SHA256",
        "FID_WEIGHTS_URL", "URL_ENV", "WEIGHTS_ENV", "WeightsNotFoundError", "check_inception_layout",
        "download_inception_weights", "inception_cache_dir", "load_inception_state_dict", "resize_bilinear_tf1",
        "resolve_inception_weights", "sha256_file",
    ],
    "otmetrics.images": ["IMAGE_EXTENSIONS", "image_features", "iter_image_batches", "iter_image_features",
                         "list_images", "read_image", "resolve_device"],
    # did not move
    "otmetrics.critic": [
        "CriticEstimate", "CriticHistory", "CriticValidation", "DualBound", "FrozenCritic", "GroupSortCritic",
        "METHODS", "MLPCritic", "MethodConfig", "bjorck_orthonormalize", "clip_weights_", "critic_loss",
        "dual_lower_bound", "estimate_w1", "gradient_penalty", "group_sort", "lipschitz_bound", "make_critic",
        "make_optimizer", "spectral_norm_bound", "torch_threads", "validate",
    ],
    "otmetrics.critic.bounds": ["DualBound", "FrozenCritic", "dual_lower_bound", "lipschitz_bound",
                                "spectral_norm_bound"],
    "otmetrics.critic.estimate": ["CriticEstimate", "CriticHistory", "CriticValidation", "estimate_w1",
                                  "validate"],
    "otmetrics.critic.networks": ["ACTIVATIONS", "GroupSortCritic", "MLPCritic", "bjorck_orthonormalize",
                                  "group_sort"],
    "otmetrics.critic.threads": ["torch_threads"],
    "otmetrics.critic.training": ["METHODS", "MethodConfig", "clip_weights_", "critic_loss",
                                  "gradient_penalty", "make_critic", "make_optimizer"],
    "otmetrics.testing": [
        "OTProblem", "assert_complementary_slackness", "assert_dual_feasible", "assert_marginals",
        "assert_metric_axioms", "assert_optimal", "assert_strong_duality", "assert_weak_duality",
        "cost_matrices", "histograms", "ot_problems", "point_clouds", "problem_batches", "sample_pairs",
    ],
    "otmetrics.testing.assertions": [
        "assert_complementary_slackness", "assert_dual_feasible", "assert_marginals", "assert_metric_axioms",
        "assert_optimal", "assert_strong_duality", "assert_weak_duality",
    ],
    "otmetrics.testing.strategies": ["OTProblem", "cost_matrices", "histograms", "ot_problems", "point_clouds",
                                     "problem_batches", "sample_pairs"],
    "otmetrics.demo": ["main", "mode_posterior", "ring_of_gaussians"],
    "otmetrics.cli": ["build_parser", "main"],
    "otmetrics.divergences": ["entropy", "js_distance", "js_divergence", "kl_divergence", "total_variation"],
}

MOVED = set(otmetrics._legacy.LEGACY_MODULES)
#: names whose module stayed but that moved to a sibling module (a DeprecationWarning names it)
MOVED_NAMES = {("otmetrics.critic.estimate", "validate"), ("otmetrics.critic.estimate", "CriticValidation")}


def _import_from(module: str, name: str):
    namespace: dict = {}
    exec(f"from {module} import {name}", namespace)  # the statement users write
    return namespace[name]


@pytest.mark.parametrize("module", sorted(PUBLIC_0_1))
def test_every_public_name_of_0_1_still_resolves(module):
    for name in PUBLIC_0_1[module]:
        if module in MOVED:
            with pytest.warns(DeprecationWarning, match=rf"^{module} is deprecated .*import {name} from"):
                old = _import_from(module, name)
            new_module = next(m for m in otmetrics._legacy.LEGACY_MODULES[module]
                              if hasattr(__import__(m, fromlist=["_"]), name))
            assert _import_from(new_module, name) is old
            if name in otmetrics.__all__:
                assert getattr(otmetrics, name) is old
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("error", DeprecationWarning)
                if (module, name) in MOVED_NAMES:  # a name that moved within its subpackage
                    with pytest.warns(DeprecationWarning, match="moved to"):
                        _import_from(module, name)
                else:
                    _import_from(module, name)


def test_flat_api_is_a_superset_of_0_1():
    assert set(PUBLIC_0_1["otmetrics"]) <= set(otmetrics.__all__)
    for name in otmetrics.__all__:
        assert getattr(otmetrics, name) is not None


def test_moved_module_paths_import_as_modules_and_do_not_shadow_functions():
    import otmetrics.inception_score as old_path  # noqa: F401 (the 0.1 statement)

    # the flat function is still the function, not the stand-in module
    assert callable(otmetrics.inception_score) and otmetrics.inception_score.__name__ == "inception_score"
    with pytest.warns(DeprecationWarning, match="otmetrics.kernels is deprecated"):
        mmd = __import__("otmetrics.kernels", fromlist=["mmd"]).mmd
    assert mmd is otmetrics.mmd
    with pytest.raises(AttributeError, match="has no attribute 'nonexistent'"):
        otmetrics.kernels.nonexistent


def test_objects_pickled_under_the_new_paths_round_trip():
    import pickle

    stats = otmetrics.GaussianStats.from_features(np.random.default_rng(0).normal(size=(10, 3)))
    again = pickle.loads(pickle.dumps(stats))
    np.testing.assert_array_equal(again.cov, stats.cov)


def test_import_otmetrics_does_not_import_torch():
    code = "import sys, otmetrics; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------------------------------------
# One spelling per concept (docs/conventions.md), and the 0.1 spellings for one release
# ------------------------------------------------------------------------------------------------
def test_default_p_is_two_everywhere():
    x, y = np.array([[0.0], [1.0]]), np.array([[2.0], [4.0]])
    with pytest.warns(FutureWarning, match=r"^wasserstein: the default p is 2 since otmetrics 0.2 \(it was 1\)"):
        w = otmetrics.wasserstein(x, y)
    assert w == pytest.approx(otmetrics.wasserstein(x, y, p=2)) and w != pytest.approx(
        otmetrics.wasserstein(x, y, p=1))
    with pytest.warns(FutureWarning, match="^cost_matrix: the default p is 2"):
        np.testing.assert_array_equal(otmetrics.cost_matrix(x, y), otmetrics.cost_matrix(x, y, p=2))
    with pytest.warns(FutureWarning, match="^wasserstein_1d: the default p is 2"):
        assert otmetrics.wasserstein_1d(x[:, 0], y[:, 0]) == otmetrics.wasserstein_1d(x[:, 0], y[:, 0], p=2)
    assert otmetrics.PointCloud(x, y).p == 2.0
    # what emd computes on a default PointCloud is now what wasserstein(x, y) ** 2 is
    assert otmetrics.emd(None, None, otmetrics.PointCloud(x, y)).cost == pytest.approx(w**2)
    import inspect

    assert inspect.signature(otmetrics.sinkhorn_divergence).parameters["p"].default == 2


def test_wasserstein_1d_weights_are_spelled_a_and_b():
    u, v, wu = [0.0, 1.0], [0.5, 2.0], [0.25, 0.75]
    ref = otmetrics.wasserstein_1d(u, v, a=wu, p=1)
    with pytest.warns(DeprecationWarning, match=r"wasserstein_1d\(u_weights=...\) is deprecated; use a="):
        assert otmetrics.wasserstein_1d(u, v, u_weights=wu, p=1) == ref
    with pytest.warns(DeprecationWarning, match=r"wasserstein_1d\(u=...\) is deprecated; use x="):
        assert otmetrics.wasserstein_1d(u=u, y=v, a=wu, p=1) == ref
    with pytest.raises(ValueError, match="^u_weights: deprecated alias of a; pass only a, got both"):
        otmetrics.wasserstein_1d(u, v, a=wu, u_weights=wu, p=1)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_both_results_share_the_base_and_the_plan_is_an_attribute(backend):
    C = np.array([[0.0, 1.0], [1.0, 0.0]])
    if backend == "torch":
        C = torch.tensor(C)
    exact = otmetrics.emd(None, None, C)
    entropic = otmetrics.sinkhorn(None, None, C, eps=0.25)
    for res in (exact, entropic):
        assert isinstance(res, otmetrics.TransportResult)
        assert res.plan.shape == (2, 2) and len(res.potentials) == 2
        assert res.marginal_error <= 1e-6 and bool(res.converged)
    assert float(exact.marginal_error) == 0.0
    assert entropic.plan is entropic.plan  # computed once
    with pytest.warns(DeprecationWarning, match=r"result.plan\(\) is deprecated"):
        called = entropic.plan()
    assert type(called) in (np.ndarray, torch.Tensor)
    np.testing.assert_array_equal(np.asarray(called), np.asarray(entropic.plan))
    assert type(entropic.plan * 2) in (np.ndarray, torch.Tensor)  # operations give plain values
    with pytest.warns(DeprecationWarning, match=r"SinkhornResult.f is deprecated"):
        assert entropic.f is entropic.potentials[0]
    with pytest.warns(DeprecationWarning, match=r"SinkhornResult.g is deprecated"):
        assert entropic.g is entropic.potentials[1]
