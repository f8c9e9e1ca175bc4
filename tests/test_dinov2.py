"""DINOv2: agreement with Hugging Face's Dinov2Model on the same weights (at 518x518, where neither
interpolates), the position-embedding interpolation against a transcription of the official code,
both weight layouts (Meta's .pth, Hugging Face's safetensors / pytorch_model.bin / modules), wrong
layouts, the preprocessing against Pillow on uint8 images, the input contract and the lookup of
the published files (environment variable, caches, download from 127.0.0.1).

Small architectures keep the tests fast; they exercise every path of the published ones (MLP and
SwiGLU blocks, LayerScale, the 37x37 position grid).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import otmetrics
from otmetrics.generative.features import dinov2, dinov2_weights, registry
from otmetrics.generative.features.dinov2 import (DINOV2_ARCHITECTURES, IMAGENET_MEAN, IMAGENET_STD, DINOv2,
                                                  DINOv2Architecture, dinov2_layout, interpolate_pos_embed)
from otmetrics.generative.features.dinov2_weights import DINOV2_WEIGHTS
from otmetrics.generative.features.preprocess import resize_bilinear_tf1
from otmetrics.generative.features.weights import WeightsNotFoundError

from weights_server import LocalServer, isolate, sha256_of

transformers = pytest.importorskip("transformers")

SMALL = {"mlp": DINOv2Architecture(32, 2, 2), "swiglu": DINOv2Architecture(48, 2, 3, ffn="swiglu")}


def hf_model(ffn: str, seed: int = 0):
    """A Hugging Face Dinov2Model of the small architecture, every parameter random."""
    arch = SMALL[ffn]
    config = transformers.Dinov2Config(hidden_size=arch.embed_dim, num_hidden_layers=arch.depth,
                                       num_attention_heads=arch.num_heads, image_size=arch.image_size,
                                       patch_size=arch.patch_size, use_swiglu_ffn=ffn == "swiglu",
                                       layer_norm_eps=1e-6)
    model = transformers.Dinov2Model(config).eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
    return model


def make_pair(ffn: str, folder: Path):
    """(ours, Hugging Face's, the HF snapshot folder) on the same random weights."""
    model = hf_model(ffn)
    model.save_pretrained(folder)
    return DINOv2(SMALL[ffn], weights=folder), model, folder


@pytest.fixture(scope="module", params=["mlp", "swiglu"])
def pair(request, tmp_path_factory):
    return make_pair(request.param, tmp_path_factory.mktemp(f"hf-{request.param}"))


@pytest.fixture(scope="module")
def mlp_pair(tmp_path_factory):
    return make_pair("mlp", tmp_path_factory.mktemp("hf-mlp-only"))


def official_state_dict(net: DINOv2) -> dict:
    """What Meta's dinov2_<arch>_pretrain.pth holds: the official module's state dict."""
    return {key: value.detach().clone() for key, value in net.state_dict().items()}


# ----------------------------------------------------------------------------------------------
# The network
# ----------------------------------------------------------------------------------------------
def test_agrees_with_hugging_face_at_518(pair):
    ours, reference, _ = pair
    x = torch.randn(2, 3, 518, 518, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference(pixel_values=x).pooler_output  # layernorm(tokens)[:, 0]
        got = ours.encode(x)
    assert got.shape == (2, ours.architecture.embed_dim)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max()))


def official_interpolation(pos_embed, height, width, patch_size):
    """A transcription of DinoVisionTransformer.interpolate_pos_encoding (interpolate_offset=0.1,
    interpolate_antialias=False), with ``w, h`` the input's third and fourth sizes as there."""
    w, h = height, width
    npatch = (h // patch_size) * (w // patch_size)
    n = pos_embed.shape[1] - 1
    if npatch == n and w == h:
        return pos_embed
    pos = pos_embed.float()
    class_pos, patch_pos = pos[:, 0], pos[:, 1:]
    dim = pos.shape[-1]
    w0, h0 = w // patch_size, h // patch_size
    m = int(math.sqrt(n))
    sx, sy = float(w0 + 0.1) / m, float(h0 + 0.1) / m
    patch_pos = F.interpolate(patch_pos.reshape(1, m, m, dim).permute(0, 3, 1, 2), mode="bicubic",
                              antialias=False, scale_factor=(sx, sy))
    assert (w0, h0) == patch_pos.shape[-2:]
    patch_pos = patch_pos.permute(0, 2, 3, 1).view(1, -1, dim)
    return torch.cat((class_pos.unsqueeze(0), patch_pos), dim=1).to(pos_embed.dtype)


@settings(max_examples=25, deadline=None)
@given(h0=st.integers(1, 60), w0=st.integers(1, 60), extra_h=st.integers(0, 13), extra_w=st.integers(0, 13))
def test_interpolation_is_the_official_formula(h0, w0, extra_h, extra_w):
    pos = torch.randn(1, 1 + 37 * 37, 8, generator=torch.Generator().manual_seed(h0 * 61 + w0))
    height, width = 14 * h0 + extra_h, 14 * w0 + extra_w
    got = interpolate_pos_embed(pos, height, width, 14)
    assert got.shape == (1, 1 + h0 * w0, 8)
    assert torch.equal(got, official_interpolation(pos, height, width, 14))


def test_interpolation_differs_from_a_resize_to_a_size():
    # the 0.1 offset moves the sampling points: Hugging Face's port (size=) gives other values at 224
    pos = torch.randn(1, 1 + 37 * 37, 8, generator=torch.Generator().manual_seed(0))
    ours = interpolate_pos_embed(pos, 224, 224, 14)[:, 1:]
    by_size = F.interpolate(pos[:, 1:].reshape(1, 37, 37, 8).permute(0, 3, 1, 2), size=(16, 16),
                            mode="bicubic", align_corners=False).permute(0, 2, 3, 1).reshape(1, 256, 8)
    assert (ours - by_size).abs().max() > 1e-3 * pos.abs().max()
    assert torch.equal(interpolate_pos_embed(pos, 224, 224, 14, offset=0)[:, 1:], by_size)
    assert interpolate_pos_embed(pos, 518, 518, 14) is pos
    half = interpolate_pos_embed(pos.half(), 224, 224, 14)  # computed in float32, returned as given
    expected = interpolate_pos_embed(pos.half().float(), 224, 224, 14).half()
    assert half.dtype == torch.float16 and torch.equal(half, expected)


def test_at_224_hugging_face_differs_and_the_official_formula_holds(pair):
    ours, reference, _ = pair
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        got = ours.encode(x)
        hf = reference(pixel_values=x).pooler_output
        # the official forward pass written out, with the transcribed interpolation
        tokens = ours.patch_embed.proj(x).flatten(2).transpose(1, 2)
        tokens = torch.cat((ours.cls_token.expand(2, -1, -1), tokens), dim=1)
        tokens = tokens + official_interpolation(ours.pos_embed, 224, 224, 14)
        for block in ours.blocks:
            tokens = block(tokens)
        expected = ours.norm(tokens)[:, 0]
    assert torch.equal(got, expected)
    assert (got - hf).abs().max() > 1e-5 * hf.abs().max()  # the note: HF does not match at 224


def test_published_architectures():
    shapes = {a: (s.embed_dim, s.depth, s.num_heads, s.ffn_hidden) for a, s in DINOV2_ARCHITECTURES.items()}
    assert shapes == {"vits14": (384, 12, 6, 1536), "vitb14": (768, 12, 12, 3072),
                      "vitl14": (1024, 24, 16, 4096), "vitg14": (1536, 40, 24, 4096)}
    layout = dinov2_layout(DINOV2_ARCHITECTURES["vitg14"])
    assert layout["blocks.39.mlp.w12.weight"] == (8192, 1536)
    assert layout["blocks.39.mlp.w3.weight"] == (1536, 4096)
    assert layout["pos_embed"] == (1, 1370, 1536) and layout["mask_token"] == (1, 1536)
    # parameter counts of the published models (torch hub): 22.1M, 86.6M, 304.4M, 1136.5M
    counts = [sum(math.prod(s) for s in dinov2_layout(a).values()) for a in DINOV2_ARCHITECTURES.values()]
    assert [round(c / 1e5) for c in counts] == [221, 866, 3044, 11365]


def test_layer_norms_and_layer_scale():
    net = DINOv2(SMALL["mlp"], pretrained=False)
    norms = [m for m in net.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert len(norms) == 2 * 2 + 1 and all(m.eps == 1e-6 for m in norms)
    assert torch.equal(net.blocks[0].ls1.gamma.detach(), torch.ones(32))
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    assert DINOv2(SMALL["mlp"], pretrained=False, requires_grad=True).cls_token.requires_grad


# ----------------------------------------------------------------------------------------------
# Weight layouts
# ----------------------------------------------------------------------------------------------
def test_every_layout_loads_the_same_network(pair, tmp_path):
    ours, reference, folder = pair
    arch = ours.architecture
    x = torch.randint(0, 256, (2, 3, 30, 40), dtype=torch.uint8)
    expected = ours(x)
    official = tmp_path / "dinov2_small_pretrain.pth"
    torch.save(official_state_dict(ours), official)
    hub_names = dict(transformers.Dinov2Model.from_pretrained(folder).state_dict())  # transformers 5 names
    bin_file = tmp_path / "pytorch_model.bin"  # the older Hub file: torch.save of the Hub names
    from safetensors.torch import load_file
    torch.save(load_file(folder / "model.safetensors"), bin_file)
    for weights in (official, official_state_dict(ours), folder / "model.safetensors", folder, bin_file,
                    hub_names, str(official)):
        assert torch.equal(DINOv2(arch, weights=weights)(x), expected), type(weights)


def test_the_mask_token_is_optional_and_checked(pair):
    ours, _, _ = pair
    state = official_state_dict(ours)
    del state["mask_token"]
    net = DINOv2(ours.architecture, weights=state)
    assert torch.equal(net.mask_token.detach(), torch.zeros_like(ours.mask_token))
    state["mask_token"] = torch.zeros(1, 7)
    with pytest.raises(ValueError, match="mask_token has shape"):
        DINOv2(ours.architecture, weights=state)


@pytest.mark.parametrize("how, match", [
    ("other depth", r"weights \(state dict\): not the DINOv2 architecture layout \(Meta's.*unexpected key.*"
                    r"blocks\.2\."),
    ("other width", r"wrong entr.*cls_token: shape \(1, 1, 16\), expected \(1, 1, 32\)"),
    ("registers", r"unexpected key\(s\), e\.g\. register_tokens"),
    ("not dinov2", r"not the DINOv2 architecture layout.*missing key\(s\), e\.g\. cls_token, pos_embed"),
    ("hf other depth", r"layout \(Hugging Face\).*missing key.*encoder\.layer\.1\."),
    ("nan", r"entry blocks\.0\.attn\.qkv\.weight must hold finite"),
    ("integer", r"entry norm\.weight must hold floating values"),
])
def test_wrong_layouts_name_the_first_mismatching_entries(mlp_pair, how, match):
    ours, reference, _ = mlp_pair
    state = official_state_dict(ours)
    if how == "other depth":
        state = official_state_dict(DINOv2(DINOv2Architecture(32, 3, 2), pretrained=False))
    elif how == "other width":
        state = official_state_dict(DINOv2(DINOv2Architecture(16, 2, 2), pretrained=False))
    elif how == "registers":
        state["register_tokens"] = torch.zeros(1, 4, 32)
    elif how == "not dinov2":
        state = {"conv.weight": torch.zeros(3)}
    elif how == "hf other depth":
        state = {k: v for k, v in reference.state_dict().items() if not k.startswith("encoder.layer.1.")}
        state = {k.replace("attention.q_proj", "attention.attention.query").replace("attention.k_proj",
                 "attention.attention.key").replace("attention.v_proj", "attention.attention.value")
                 .replace("attention.o_proj", "attention.output.dense"): v for k, v in state.items()}
    elif how == "nan":
        state["blocks.0.attn.qkv.weight"][0, 0] = float("nan")
    else:
        state["norm.weight"] = state["norm.weight"].long()
    with pytest.raises(ValueError, match=match):
        DINOv2(ours.architecture, weights=state)


def test_bad_constructor_arguments(tmp_path):
    with pytest.raises(ValueError, match="^arch: must be one of vits14, vitb14, vitl14, vitg14"):
        DINOv2("vitl14_reg")
    with pytest.raises(ValueError, match="^resize: must be 'dgm-eval', 'tf1' or None"):
        DINOv2(SMALL["mlp"], pretrained=False, resize="bilinear")
    with pytest.raises(ValueError, match="^weights: must be None when pretrained=False"):
        DINOv2(SMALL["mlp"], pretrained=False, weights={})
    with pytest.raises(ValueError, match="^weights: required for a custom architecture"):
        DINOv2(SMALL["mlp"])
    with pytest.raises(ValueError, match="^weights: expected a path or a state dict, got int"):
        DINOv2(SMALL["mlp"], weights=3)
    with pytest.raises(WeightsNotFoundError, match="^weights: no such file"):
        DINOv2(SMALL["mlp"], weights=tmp_path / "missing.pth")
    with pytest.raises(WeightsNotFoundError, match="holds none of model.safetensors, pytorch_model.bin"):
        DINOv2(SMALL["mlp"], weights=tmp_path)
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(ValueError, match="could not read"):
        DINOv2(SMALL["mlp"], weights=tmp_path / "junk.pth")
    with pytest.raises(ValueError, match="^num_heads: must divide embed_dim"):
        DINOv2Architecture(30, 2, 4)
    with pytest.raises(ValueError, match="^ffn: must be 'mlp' or 'swiglu'"):
        DINOv2Architecture(32, 2, 2, ffn="geglu")


# ----------------------------------------------------------------------------------------------
# Preprocessing and the input contract
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return DINOv2(SMALL["mlp"], pretrained=False)


def images(n=2, height=37, width=53, seed=0):
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.integers(0, 256, (n, 3, height, width), dtype=np.uint8))


def dgm_eval_reference(batch: torch.Tensor) -> torch.Tensor:
    """dgm-eval's transform written out: PIL image, Resize((224, 224), BICUBIC), ToTensor, Normalize."""
    out = []
    for image in batch:
        pil = Image.fromarray(image.permute(1, 2, 0).numpy()).resize((224, 224), Image.BICUBIC)
        tensor = torch.from_numpy(np.array(pil)).permute(2, 0, 1).float().div(255)
        mean = torch.as_tensor(np.array(IMAGENET_MEAN), dtype=torch.float32).view(-1, 1, 1)
        std = torch.as_tensor(np.array(IMAGENET_STD), dtype=torch.float32).view(-1, 1, 1)
        out.append(tensor.sub(mean).div(std))
    return torch.stack(out)


def test_dgm_eval_preprocessing_is_pillow_on_uint8(net):
    x = images()
    assert torch.equal(net.preprocess(x), dgm_eval_reference(x))
    # floats in [0, 1] are the uint8 images they round to: the same features, exactly
    assert torch.equal(net(x.float() / 255), net(x))
    grey = x[:, :1]
    assert torch.equal(net(grey), net(grey.expand(-1, 3, -1, -1)))


def test_tf1_preprocessing_is_torch_fidelitys():
    torch.manual_seed(0)
    tf1 = DINOv2(SMALL["mlp"], pretrained=False, resize="tf1")
    x = images()
    resized = resize_bilinear_tf1(x.float(), (224, 224))
    mean = torch.tensor([255 * m for m in IMAGENET_MEAN]).view(1, -1, 1, 1)
    std = torch.tensor([255 * s for s in IMAGENET_STD]).view(1, -1, 1, 1)
    assert torch.equal(tf1.preprocess(x), (resized - mean) / std)
    torch.testing.assert_close(tf1(x.double() / 255), tf1(x), rtol=1e-5, atol=1e-5)


def test_no_resize_keeps_the_size_and_interpolates(net):
    no_resize = DINOv2(net.architecture, weights=net.state_dict(), resize=None)
    x = images(height=28, width=42)
    assert no_resize.preprocess(x).shape == (2, 3, 28, 42)
    assert no_resize(x).shape == (2, 32)
    with pytest.raises(ValueError, match=r"^images: with resize=None, height and width must be multiples of"):
        no_resize(images(height=30, width=42))


@pytest.mark.parametrize("bad, match", [
    (torch.full((1, 3, 8, 8), 2.0), r"^images: floating images must lie in \[0, 1\]"),
    (torch.full((1, 3, 8, 8), -0.5), r"^images: floating images must lie in \[0, 1\]"),
    (torch.full((1, 3, 8, 8), float("nan")), "^images: values must be finite"),
    (torch.zeros(1, 8, 8, 3, dtype=torch.uint8), r"^images: expected a batch of shape \(N, 3, H, W\)"),
    (torch.zeros(1, 3, 8, 8, dtype=torch.int32), "^images: expected uint8"),
])
@pytest.mark.parametrize("resize", ["dgm-eval", "tf1"])
def test_bad_images(net, bad, match, resize):
    model = DINOv2(net.architecture, weights=net.state_dict(), resize=resize)
    with pytest.raises(ValueError, match=match):
        model(bad)


def test_numpy_dtypes_and_devices(net):
    x = images()
    out = net(x.numpy())
    assert isinstance(out, np.ndarray) and out.dtype == np.float64
    np.testing.assert_array_equal(out, net(x).numpy().astype(np.float64))
    double = DINOv2(net.architecture, weights=net.state_dict()).double()
    got = double(x)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got.float(), net(x), rtol=1e-4, atol=1e-4)


def test_forward_runs_in_full_float32(net, monkeypatch):
    from otmetrics.generative.features import encoder

    entered = []
    real = encoder.full_float32

    def spy(device_type, enabled=True):
        entered.append((device_type, enabled))
        return real(device_type, enabled=enabled)

    monkeypatch.setattr(encoder, "full_float32", spy)
    net(images(1))
    net.tf32 = True
    try:
        net(images(1))
    finally:
        net.tf32 = False
    assert entered == [("cpu", True), ("cpu", False)]


def test_image_features_hands_the_raw_batches_to_the_network(net, tmp_path):
    x = images(3, 24, 30)
    for i, image in enumerate(x):
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(tmp_path / f"{i}.png")
    features = otmetrics.image_features(tmp_path, net, device="cpu", progress=False)
    np.testing.assert_array_equal(features, net(x).numpy().astype(np.float64))


# ----------------------------------------------------------------------------------------------
# The published files: names, digests, lookup, download
# ----------------------------------------------------------------------------------------------
def test_published_files_are_where_torch_hub_puts_them():
    for arch, spec in DINOV2_WEIGHTS.items():
        assert spec.url == f"https://dl.fbaipublicfiles.com/dinov2/dinov2_{arch}/dinov2_{arch}_pretrain.pth"
        assert spec.url.rsplit("/", 1)[-1] == spec.filename  # torch.hub.load_state_dict_from_url's name
        assert spec.env == f"OTMETRICS_DINOV2_{arch.upper()}_WEIGHTS" and len(spec.sha256) == 64
    large = DINOV2_WEIGHTS["vitl14"]
    assert large.sha256.startswith("d5383ea8") and large.size == 1_217_586_395


@pytest.fixture
def published_small(monkeypatch, tmp_path):
    """'vits14' made small: the lookup of a published architecture, on a file generated here."""
    torch.manual_seed(3)
    net = DINOv2(SMALL["mlp"], pretrained=False)
    path = tmp_path / "generated" / "dinov2_vits14_pretrain.pth"
    path.parent.mkdir()
    torch.save(official_state_dict(net), path)
    spec = dataclasses.replace(DINOV2_WEIGHTS["vits14"], sha256=sha256_of(path.read_bytes()))
    monkeypatch.setitem(dinov2.DINOV2_ARCHITECTURES, "vits14", SMALL["mlp"])
    monkeypatch.setitem(dinov2.DINOV2_WEIGHTS, "vits14", spec)
    isolate(tmp_path, monkeypatch, "DINOV2")
    return net, path


def test_environment_variable_caches_and_download(published_small, monkeypatch, tmp_path):
    net, path = published_small
    x = images(1)
    expected = net(x)
    with pytest.raises(WeightsNotFoundError, match="OTMETRICS_DINOV2_VITS14_WEIGHTS unset.*vits14_pretrain"):
        DINOv2("vits14", download=False)
    monkeypatch.setenv("OTMETRICS_DINOV2_VITS14_WEIGHTS", str(path))
    assert torch.equal(DINOv2("vits14")(x), expected)
    monkeypatch.delenv("OTMETRICS_DINOV2_VITS14_WEIGHTS")
    data = path.read_bytes()
    with LocalServer({"dinov2_vits14/dinov2_vits14_pretrain.pth": data,
                      "bad/dinov2_vits14_pretrain.pth": data + b"x"}) as server:
        monkeypatch.setenv("OTMETRICS_DINOV2_VITS14_URL", server.url("bad/dinov2_vits14_pretrain.pth"))
        with pytest.raises(RuntimeError, match="checksum mismatch"):
            DINOv2("vits14", progress=False)
        address = server.url("dinov2_vits14/dinov2_vits14_pretrain.pth")
        monkeypatch.setenv("OTMETRICS_DINOV2_VITS14_URL", address)
        downloaded = DINOv2("vits14", progress=False)
    cached = tmp_path / "cache" / "dinov2_vits14_pretrain.pth"
    assert cached.read_bytes() == data and str(cached) in downloaded.weights_source
    assert torch.equal(downloaded(x), expected)
    assert torch.equal(DINOv2("vits14", download=False)(x), expected)  # the server is gone: the cache


def test_torch_hubs_download_is_reused_after_its_hash_is_checked(published_small, monkeypatch, tmp_path):
    net, path = published_small
    hub = tmp_path / "torch_home" / "hub" / "checkpoints" / "dinov2_vits14_pretrain.pth"
    hub.parent.mkdir(parents=True)
    hub.write_bytes(path.read_bytes() + b"tampered")
    with pytest.raises(RuntimeError, match="passes the SHA-256 check"):
        DINOv2("vits14", download=False)
    hub.write_bytes(path.read_bytes())
    assert str(hub) in DINOv2("vits14", download=False).weights_source


def test_registered_names():
    for arch, dim in (("vits14", 384), ("vitb14", 768), ("vitl14", 1024), ("vitg14", 1536)):
        entry = registry.extractor_entry(f"dinov2-{arch}")
        assert entry.dim == dim == DINOV2_ARCHITECTURES[arch].embed_dim and entry.kwargs == {"arch": arch}
    net = registry.build_extractor("dinov2-vits14", pretrained=False)
    assert isinstance(net, DINOv2) and net.arch == "vits14" and net.resize == "dgm-eval"
    assert otmetrics.DINOv2 is DINOv2 and "DINOv2" in otmetrics.__all__


def test_the_file_layout_is_the_official_modules(tmp_path):
    # the keys Meta's file holds (the official DinoVisionTransformer's state dict, block_chunks=0)
    layout = dinov2_layout(DINOV2_ARCHITECTURES["vitl14"])
    assert list(layout)[:6] == ["cls_token", "pos_embed", "mask_token", "patch_embed.proj.weight",
                                "patch_embed.proj.bias", "blocks.0.norm1.weight"]
    assert [k[len("blocks.0."):] for k in layout if k.startswith("blocks.0.")] == [
        "norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight",
        "attn.proj.bias", "ls1.gamma", "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias",
        "mlp.fc2.weight", "mlp.fc2.bias", "ls2.gamma"]
    assert list(layout)[-2:] == ["norm.weight", "norm.bias"]
    modules = {"embeddings.cls_token": 0, "encoder.layer.0.mlp.gate_proj.weight": 0}
    assert dinov2_weights.dinov2_layout_kind(modules) == "hf-modules"


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_forward_is_full_float32_whatever_the_settings():
    from otmetrics.generative.features import precision

    saved = [(s, s.read()) for s in precision.precision_settings("cuda")]
    try:
        torch.set_float32_matmul_precision("high")  # TF32 matmuls; cuDNN convolutions: TF32 by default
        torch.manual_seed(0)
        cpu = DINOv2(DINOv2Architecture(256, 4, 4), pretrained=False)
        gpu = DINOv2(cpu.architecture, weights=cpu.state_dict()).cuda()
        x = images(4, 60, 70)
        expected = cpu(x)
        exact = gpu(x.cuda()).cpu()  # uint8 on the GPU: Pillow runs on a CPU copy
        gpu.tf32 = True
        fast = gpu(x).cpu()
        assert (exact - expected).abs().max() <= 1e-4 * expected.abs().max()
        if torch.cuda.get_device_capability() >= (8, 0):  # TF32 exists from Ampere on
            assert (fast - expected).abs().max() > (exact - expected).abs().max()
        assert torch.get_float32_matmul_precision() == "high"
    finally:
        for setting, value in saved:
            setting.write(value)
