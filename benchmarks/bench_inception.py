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
from otmetrics.inception import resize_bilinear_tf1  # noqa: E402


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


def forward_rate(net, images, repeat) -> float:
    with torch.inference_mode():
        seconds = timeit(lambda: net(images), repeat=repeat, warmup=1)
    return images.shape[0] / seconds


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
        ours = timeit(lambda: FIDInceptionV3(weights), repeat=args.repeat)
        row = ["load weights, s", ours]
        if anchor:
            def build_theirs():
                return anchor[0]("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(weights))

            theirs = timeit(build_theirs, repeat=args.repeat)
            row += [theirs, theirs / ours]
        rows.append(row)

        # -- forward pass at 299x299, CPU -----------------------------------------------------------
        images = torch.randint(0, 256, (args.batch, 3, 299, 299), dtype=torch.uint8,
                               generator=torch.Generator().manual_seed(1))
        net = FIDInceptionV3(weights, resize="tf1", output=("pool3", "logits_unbiased"))
        ours = forward_rate(net, images, args.repeat)
        row = [f"forward, images/s (batch {args.batch}, CPU)", ours]
        diff = None
        if anchor:
            theirs_net = anchor[0]("inception-v3-compat", ["2048", "logits_unbiased"],
                                   feature_extractor_weights_path=str(weights))
            theirs = forward_rate(theirs_net, images, args.repeat)
            row += [theirs, ours / theirs]
            with torch.inference_mode():
                diff = max(float((a - b).abs().max()) for a, b in zip(net(images), theirs_net(images)))
        rows.append(row)
        nchw = FIDInceptionV3(weights, resize="tf1", channels_last=False)
        rows.append(["forward, images/s, channels_last=False (NCHW)",
                     forward_rate(nchw, images, args.repeat)])

        # -- resizing 64x64 -> 299x299 (batch 64) ------------------------------------------------------
        small = torch.rand(64, 3, 64, 64) * 255
        ours = timeit(lambda: resize_bilinear_tf1(small, (299, 299)), repeat=args.repeat * 3)
        row = ["TF1 resize 64 x (3, 64, 64) -> 299, ms", ours * 1e3]
        if anchor:
            theirs = timeit(lambda: anchor[1](small, size=(299, 299), align_corners=False),
                            repeat=args.repeat * 3)
            row += [theirs * 1e3, theirs / ours]
            exact = bool(torch.equal(resize_bilinear_tf1(small, (299, 299)),
                                     anchor[1](small, size=(299, 299), align_corners=False)))
            row[0] += f" (bit-identical: {exact})"
        rows.append(row)
        torch_resize = timeit(lambda: F.interpolate(small, size=(299, 299), mode="bilinear",
                                                    align_corners=False), repeat=args.repeat * 3)
        rows.append(["torch bilinear resize (pytorch-fid), same input, ms", torch_resize * 1e3])

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
        if diff is not None:
            print(f"largest |feature difference| otmetrics vs torch-fidelity (same weights, tf1): {diff:.3g}")

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
