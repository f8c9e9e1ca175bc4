"""FIDInceptionV3 and the image pipeline: load time, forward throughput, TF1 resize, folders.

    python benchmarks/bench_inception.py                      # otmetrics alone (CPU)
    python benchmarks/bench_inception.py --cuda               # also on the GPU (TF32 off/on)
    python benchmarks/bench_inception.py --torch-fidelity-src DIR

torch-fidelity's InceptionV3 imports only torch, but its package imports torchvision, which does not
import beside every torch build. ``--torch-fidelity-src`` takes an unpacked torch-fidelity wheel
(``pip download torch-fidelity --no-deps`` and unzip it) and loads that one module from it, so that
both networks run side by side in this process with the same generated weights: speed ratios and the
largest feature difference. The real FID weights are not needed (nor downloadable here): all
numbers use a generated weight file in the exact layout, which costs the same.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import machine, table, timeit  # noqa: E402

from otmetrics import FIDInceptionV3, image_features  # noqa: E402
from otmetrics.generative.features.preprocess import resize_bilinear_tf1  # noqa: E402


def load_torch_fidelity(src: str):
    """torch-fidelity's InceptionV3 module and TF1 resize from an unpacked source tree."""
    package = types.ModuleType("torch_fidelity")
    package.__path__ = [str(Path(src) / "torch_fidelity")]
    sys.modules["torch_fidelity"] = package  # skip the package __init__ (it imports torchvision)
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    return FeatureExtractorInceptionV3, interpolate_bilinear_2d_like_tensorflow1x


def make_weights(folder: Path) -> Path:
    torch.manual_seed(0)
    path = folder / "generated-fid-weights.pth"
    torch.save(FIDInceptionV3(pretrained=False).state_dict(), path)
    return path


def interleaved(functions: dict, rounds: int) -> dict:
    """The fastest of ``rounds`` runs of each function, run in turn within each round.

    On a shared machine the load changes over minutes; interleaving gives the functions the same
    conditions, and the minimum is the run least disturbed by other jobs.
    """
    for fn in functions.values():
        fn()  # warm-up
    best = {name: float("inf") for name in functions}
    for _ in range(rounds):
        for name, fn in functions.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cuda", action="store_true", help="also benchmark on CUDA")
    parser.add_argument("--torch-fidelity-src", default=None, metavar="DIR")
    parser.add_argument("--batch", type=int, default=8, help="images per forward pass (CPU)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"machine: {machine()}, torch threads {torch.get_num_threads()}")
    anchor = load_torch_fidelity(args.torch_fidelity_src) if args.torch_fidelity_src else None

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        weights = make_weights(tmp)
        rows = []

        # -- building the network from the weight file ------------------------------------------
        builds = {"ours": lambda: FIDInceptionV3(weights)}
        if anchor:
            builds["theirs"] = lambda: anchor[0]("inception-v3-compat", ["2048"],
                                                 feature_extractor_weights_path=str(weights))
        best = interleaved(builds, args.repeat)
        row = ["load weights, s", best["ours"]]
        if anchor:
            row += [best["theirs"], best["theirs"] / best["ours"]]
        rows.append(row)

        # -- forward pass at 299x299, CPU -----------------------------------------------------------
        images = torch.randint(0, 256, (args.batch, 3, 299, 299), dtype=torch.uint8,
                               generator=torch.Generator().manual_seed(1))
        both = ("pool3", "logits_unbiased")
        nets = {"ours": FIDInceptionV3(weights, resize="tf1", output=both),
                "nchw": FIDInceptionV3(weights, resize="tf1", output=both, channels_last=False)}
        if anchor:
            nets["theirs"] = anchor[0]("inception-v3-compat", ["2048", "logits_unbiased"],
                                       feature_extractor_weights_path=str(weights))
        with torch.inference_mode():
            best = interleaved({name: (lambda n=net: n(images)) for name, net in nets.items()}, args.repeat)
            outputs = {name: net(images) for name, net in nets.items()}
        rate = {name: args.batch / seconds for name, seconds in best.items()}
        row = [f"forward, images/s (batch {args.batch}, CPU)", rate["ours"]]
        if anchor:
            row += [rate["theirs"], rate["ours"] / rate["theirs"]]
        rows.append(row)
        row = ["forward, images/s, channels_last=False (NCHW)", rate["nchw"]]
        if anchor:
            row += [rate["theirs"], rate["nchw"] / rate["theirs"]]
        rows.append(row)
        differences = {}
        if anchor:
            for name in ("ours", "nchw"):
                pairs = zip(outputs[name], outputs["theirs"])
                differences[name] = max(float((a - b).abs().max()) for a, b in pairs)

        # -- resizing 64x64 -> 299x299 (batch 8) -------------------------------------------------------
        small = torch.rand(8, 3, 64, 64) * 255
        resizes = {"ours": lambda: resize_bilinear_tf1(small, (299, 299)),
                   "torch": lambda: F.interpolate(small, size=(299, 299), mode="bilinear",
                                                  align_corners=False)}
        if anchor:
            resizes["theirs"] = lambda: anchor[1](small, size=(299, 299), align_corners=False)
        best = interleaved(resizes, args.repeat * 5)
        row = ["TF1 resize 8 x (3, 64, 64) -> 299, ms", best["ours"] * 1e3]
        if anchor:
            row += [best["theirs"] * 1e3, best["theirs"] / best["ours"]]
            exact = bool(torch.equal(resizes["ours"](), resizes["theirs"]()))
            row[0] += f" (bit-identical: {exact})"
        rows.append(row)
        rows.append(["torch bilinear resize (pytorch-fid), same input, ms", best["torch"] * 1e3])

        # -- a folder of PNG files to features ---------------------------------------------------------
        from PIL import Image

        folder = tmp / "images"
        folder.mkdir()
        rng = np.random.default_rng(0)
        n_images = 2 * args.batch
        for i in range(n_images):
            Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(folder / f"{i:04d}.png")
        plain = FIDInceptionV3(weights)
        start = time.perf_counter()
        image_features(folder, plain, batch_size=args.batch, device="cpu", progress=False)
        seconds = time.perf_counter() - start
        rows.append([f"folder of {n_images} PNG 64x64 -> pool3, images/s", n_images / seconds])

        header = ["CPU", "otmetrics"] + (["torch-fidelity", "ratio (speed-up)"] if anchor else [])
        print(table(header, rows))
        if differences:
            print("largest |feature or logit difference| otmetrics vs torch-fidelity (same weights, "
                  f"resize='tf1'): {differences['ours']:.3g} (channels_last=True), "
                  f"{differences['nchw']:.3g} (channels_last=False)")

        if args.cuda:
            if not torch.cuda.is_available():
                raise SystemExit("--cuda: no CUDA device")
            cuda_rows = []
            batch = torch.randint(0, 256, (128, 3, 299, 299), dtype=torch.uint8,
                                  generator=torch.Generator().manual_seed(2)).cuda()
            cpu_reference = FIDInceptionV3(weights)(batch[:8].cpu())
            for tf32 in (False, True):
                for layout in (False, True):
                    gpu_net = FIDInceptionV3(weights, tf32=tf32, channels_last=layout).cuda()

                    def run():
                        gpu_net(batch)
                        torch.cuda.synchronize()

                    with torch.inference_mode():
                        rate = batch.shape[0] / timeit(run, repeat=args.repeat, warmup=2)
                        error = float((gpu_net(batch[:8]).cpu() - cpu_reference).abs().max())
                    cuda_rows.append([f"tf32={tf32}, channels_last={layout}",
                                      rate, error])
            print(table(["CUDA, batch 128", "images/s", "max |feature - CPU feature|"], cuda_rows))


if __name__ == "__main__":
    main()
