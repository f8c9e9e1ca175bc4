"""DINOv2 ViT-L/14 and CLIP ViT-L/14@336px: throughput and feature agreement against the reference modules.

    python benchmarks/bench_extractors.py                     # every section, CPU (and CUDA when present)
    python benchmarks/bench_extractors.py --section dinov2 --batch 2 --rounds 1   # one section, quickly
    python benchmarks/bench_extractors.py --no-cuda

The references are Hugging Face ``transformers``' ``Dinov2Model`` and ``CLIPVisionModelWithProjection``
(a development dependency), run in this process on the same weights: a random initialisation of the
full-size architecture, which costs exactly what the published weights cost (the files are not needed,
nor downloadable here). torch-fidelity 0.4's extractors cannot be the anchor in this environment: its
DINOv2 extractor fetches Meta's code through ``torch.hub.load`` (network access), and its CLIP module
imports ``torchvision`` at the top, which does not import beside this torch build.

Sections:

- ``dinov2``: ``otmetrics.DINOv2("vitl14")`` against ``Dinov2Model`` on preprocessed 224x224 batches
  (the FD_DINOv2 setting), images/s and the ratio; the largest relative feature difference at 518x518
  (where neither interpolates the position embeddings: the agreement of the networks) and at 224x224
  (where Hugging Face's resize of the position embeddings differs from the official one);
- ``clip``: ``otmetrics.CLIPImageEncoder("ViT-L/14@336px")`` against ``CLIPVisionModelWithProjection``
  on 336x336 batches, images/s, ratio, largest relative difference;
- ``load``: building ``DINOv2("vitl14")`` from a weight file in Meta's layout and from a Hugging Face
  snapshot (``model.safetensors``), against ``Dinov2Model.from_pretrained`` on the same snapshot
  (files in a temporary folder, read once before timing so that the page cache holds them);
- ``preprocess``: the Pillow resizes (dgm-eval's stretch to 224, CMMD's crop and resize to 336) on
  512x512 ``uint8`` images, images/s: on a GPU they run on the CPU and can bound the throughput;
- CUDA (when a device is present, unless ``--no-cuda``): the same networks on the GPU, full float32
  (``tf32=False``, the default) and TF32, against the references in torch's default settings.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import machine, table  # noqa: E402

from otmetrics import CLIPImageEncoder, DINOv2  # noqa: E402
from otmetrics.generative.features.pil_resize import resize_pil  # noqa: E402


def interleaved(functions: dict, rounds: int) -> dict:
    """The fastest of ``rounds`` runs of each function, taking turns within each round (after one warm-up
    each): on a shared machine the functions see the same conditions, and the minimum is the least
    disturbed run."""
    for fn in functions.values():
        fn()
    best = {name: float("inf") for name in functions}
    for _ in range(rounds):
        for name, fn in functions.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b|."""
    return float((a.double() - b.double()).abs().max() / b.double().abs().max())


def dinov2_pair(device="cpu"):
    import transformers

    config = transformers.Dinov2Config(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                       image_size=518, patch_size=14, layer_norm_eps=1e-6,
                                       layerscale_value=1.0)
    torch.manual_seed(0)
    reference = transformers.Dinov2Model(config).eval()
    with torch.no_grad():  # LayerScale and LayerNorm away from their neutral initial values
        for name, parameter in reference.named_parameters():
            if parameter.ndim == 1:
                parameter.add_(0.1 * torch.randn_like(parameter))
    ours = DINOv2("vitl14", weights=reference.state_dict(), resize=None)
    return ours.to(device), reference.to(device)


def clip_pair(device="cpu"):
    import transformers

    config = transformers.CLIPVisionConfig(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                           intermediate_size=4096, image_size=336, patch_size=14,
                                           projection_dim=768)
    torch.manual_seed(0)
    reference = transformers.CLIPVisionModelWithProjection(config).eval()
    with torch.no_grad():
        for name, parameter in reference.named_parameters():
            if parameter.ndim == 1:
                parameter.add_(0.1 * torch.randn_like(parameter))
    ours = CLIPImageEncoder("ViT-L/14@336px", weights=reference.state_dict(), resize=None)
    return ours.to(device), reference.to(device)


def dinov2_section(batch: int, rounds: int):
    ours, reference = dinov2_pair()
    x = torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        best = interleaved({"otmetrics": lambda: ours.encode(x),
                            "transformers": lambda: reference(pixel_values=x).pooler_output}, rounds)
        at_224 = relative_difference(ours.encode(x), reference(pixel_values=x).pooler_output)
        big = torch.randn(1, 3, 518, 518, generator=torch.Generator().manual_seed(2))
        at_518 = relative_difference(ours.encode(big), reference(pixel_values=big).pooler_output)
    rows = [["otmetrics.DINOv2", batch / best["otmetrics"], best["transformers"] / best["otmetrics"]],
            ["transformers Dinov2Model", batch / best["transformers"], 1.0]]
    print(f"\nDINOv2 ViT-L/14, CPU, batch {batch} at 224x224 (best of {rounds}, interleaved)")
    print(table(["network", "images/s", "speed vs transformers"], rows))
    print(f"largest relative feature difference: {at_518:.2e} at 518x518 (no interpolation), "
          f"{at_224:.2e} at 224x224 (Hugging Face resizes the position embeddings to a size, the official "
          "code by the scale factor (h0 + 0.1) / 37)")


def clip_section(batch: int, rounds: int):
    ours, reference = clip_pair()
    x = torch.randn(batch, 3, 336, 336, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        best = interleaved({"otmetrics": lambda: ours.encode(x),
                            "transformers": lambda: reference(pixel_values=x).image_embeds}, rounds)
        difference = relative_difference(ours.encode(x), reference(pixel_values=x).image_embeds)
    speed = best["transformers"] / best["otmetrics"]
    rows = [["otmetrics.CLIPImageEncoder", batch / best["otmetrics"], speed],
            ["transformers CLIPVisionModelWithProjection", batch / best["transformers"], 1.0]]
    print(f"\nCLIP ViT-L/14@336px, CPU, batch {batch} at 336x336 (best of {rounds}, interleaved)")
    print(table(["network", "images/s", "speed vs transformers"], rows))
    print(f"largest relative feature difference: {difference:.2e}")


def load_section(rounds: int):
    import tempfile

    import transformers

    ours, reference = dinov2_pair()
    with tempfile.TemporaryDirectory() as tmp:
        official = Path(tmp) / "dinov2_vitl14_pretrain.pth"
        torch.save(ours.state_dict(), official)
        reference.save_pretrained(tmp)
        for path in (official, Path(tmp) / "model.safetensors"):
            path.read_bytes()  # into the page cache
        best = interleaved({
            "official": lambda: DINOv2("vitl14", weights=official),
            "hf": lambda: DINOv2("vitl14", weights=tmp),
            "reference": lambda: transformers.Dinov2Model.from_pretrained(tmp),
        }, rounds)
    rows = [["otmetrics.DINOv2, Meta's .pth layout", best["official"], best["reference"] / best["official"]],
            ["otmetrics.DINOv2, Hugging Face snapshot", best["hf"], best["reference"] / best["hf"]],
            ["transformers Dinov2Model.from_pretrained", best["reference"], 1.0]]
    print(f"\nBuilding DINOv2 ViT-L/14 from its weight file (1.2 GB, best of {rounds})")
    print(table(["network", "seconds", "speed vs transformers"], rows))


def preprocess_section(rounds: int, n: int = 32):
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.integers(0, 256, (n, 3, 512, 512), dtype=np.uint8))
    rows = []
    for label, size, method in (("dgm-eval: stretch to 224", 224, "stretch"),
                                ("CMMD: centre square, 336", 336, "crop-square"),
                                ("OpenAI: short side, crop 336", 336, "short-side")):
        timings = interleaved({threads: (lambda t=threads: resize_pil(images, size, method=method,
                                                                      n_threads=t))
                               for threads in (1, None)}, rounds)
        rows.append([label, n / timings[1], n / timings[None]])
    print(f"\nPillow bicubic resizes of {n} images 512x512 uint8 (best of {rounds})")
    print(table(["resize", "images/s, 1 thread", "images/s, all cores"], rows))


def cuda_section(batch: int, rounds: int):
    from otmetrics.generative.features.precision import full_float32

    def synced(fn):
        def timed():
            fn()
            torch.cuda.synchronize()
        return timed

    rows = []
    for label, make, size, output in (("DINOv2 ViT-L/14", dinov2_pair, 224, "pooler_output"),
                                      ("CLIP ViT-L/14@336px", clip_pair, 336, "image_embeds")):
        ours, reference = make("cpu")
        x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            on_cpu = ours.encode(x[:2])
            ours, reference, x = ours.cuda(), reference.cuda(), x.cuda()

            def ours_full_float32():  # what a forward pass does unless tf32=True
                with full_float32("cuda"):
                    ours.encode(x)

            best = interleaved({"full": synced(ours_full_float32),
                                "defaults": synced(lambda: ours.encode(x)),
                                "reference": synced(lambda: getattr(reference(pixel_values=x), output))},
                               rounds)
            with full_float32("cuda"):
                full = ours.encode(x[:2]).cpu()
            defaults = ours.encode(x[:2]).cpu()
            ref = getattr(reference(pixel_values=x[:2]), output).cpu()
        rows.append([label, "otmetrics, full float32 (default)", batch / best["full"],
                     relative_difference(full, on_cpu)])
        rows.append([label, "otmetrics, tf32=True (torch's settings)", batch / best["defaults"],
                     relative_difference(defaults, on_cpu)])
        rows.append([label, "transformers (torch's settings)", batch / best["reference"],
                     relative_difference(ref, on_cpu)])
        ours = reference = x = None  # free the GPU for the next pair
        torch.cuda.empty_cache()
    print(f"\nCUDA ({torch.cuda.get_device_name()}), batch {batch}, best of {rounds}; torch's settings: "
          f"cuDNN TF32 convolutions {torch.backends.cudnn.allow_tf32}, matmul precision "
          f"{torch.get_float32_matmul_precision()!r}")
    print(table(["network", "run", "images/s", "relative difference to otmetrics on the CPU"], rows))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--section", choices=("all", "dinov2", "clip", "load", "preprocess"), default="all")
    parser.add_argument("--batch", type=int, default=4, help="images per forward pass on the CPU")
    parser.add_argument("--cuda-batch", type=int, default=64, help="images per forward pass on CUDA")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-cuda", action="store_true", help="skip the CUDA section")
    args = parser.parse_args(argv)
    import transformers

    print(f"machine: {machine()}, torch threads {torch.get_num_threads()}, "
          f"transformers {transformers.__version__}")
    if args.section in ("all", "dinov2"):
        dinov2_section(args.batch, args.rounds)
    if args.section in ("all", "clip"):
        clip_section(max(1, args.batch // 2), args.rounds)
    if args.section in ("all", "load"):
        load_section(args.rounds)
    if args.section in ("all", "preprocess"):
        preprocess_section(args.rounds)
    if torch.cuda.is_available() and not args.no_cuda and args.section == "all":
        cuda_section(args.cuda_batch, args.rounds)
    elif not torch.cuda.is_available():
        print("\nCUDA: no device here; the CUDA section runs where one is present")


if __name__ == "__main__":
    main()
