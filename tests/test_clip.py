"""CLIPImageEncoder: agreement with Hugging Face's CLIPVisionModelWithProjection and with a
transcription of OpenAI's VisionTransformer on the same weights; OpenAI's TorchScript archives
(float16 inside, read without running their code), the Hugging Face files, wrong layouts; the CMMD,
OpenAI and torch-fidelity preprocessing against Pillow on uint8 images; the lookup of OpenAI's
files (environment variable, OpenAI's and torch-fidelity's caches, download from 127.0.0.1).
"""

from __future__ import annotations

import dataclasses
import io
import pickle
import warnings
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import otmetrics
from otmetrics.generative.features import clip, registry
from otmetrics.generative.features.clip import (CLIP_ARCHITECTURES, CLIP_MEAN, CLIP_STD, CLIPArchitecture,
                                                CLIPImageEncoder, clip_layout)
from otmetrics.generative.features.clip_weights import CLIP_URLS, CLIP_WEIGHTS
from otmetrics.generative.features.preprocess import resize_bilinear_tf1
from otmetrics.generative.features.state_dicts import read_state_dict
from otmetrics.generative.features.torchscript import read_torchscript_tensors
from otmetrics.generative.features.weights import WeightsNotFoundError

from weights_server import LocalServer, isolate, sha256_of

transformers = pytest.importorskip("transformers")

SMALL = CLIPArchitecture(width=32, layers=2, heads=2, patch_size=8, image_size=32, embed_dim=24)


# ----------------------------------------------------------------------------------------------
# A transcription of OpenAI's clip/model.py (the ViT image tower and a small text tower), sequence-first
# ----------------------------------------------------------------------------------------------
class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ReferenceBlock(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict([("c_fc", nn.Linear(width, 4 * width)), ("gelu", QuickGELU()),
                                              ("c_proj", nn.Linear(4 * width, width))]))
        self.ln_2 = nn.LayerNorm(width)

    def forward(self, x):  # (L, N, D)
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class ReferenceTransformer(nn.Module):
    def __init__(self, width, layers, heads):
        super().__init__()
        self.resblocks = nn.Sequential(*[ReferenceBlock(width, heads) for _ in range(layers)])


class ReferenceVisual(nn.Module):
    def __init__(self, a: CLIPArchitecture):
        super().__init__()
        self.conv1 = nn.Conv2d(3, a.width, a.patch_size, a.patch_size, bias=False)
        scale = a.width ** -0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(a.width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(a.grid ** 2 + 1, a.width))
        self.ln_pre = nn.LayerNorm(a.width)
        self.transformer = ReferenceTransformer(a.width, a.layers, a.heads)
        self.ln_post = nn.LayerNorm(a.width)
        self.proj = nn.Parameter(scale * torch.randn(a.width, a.embed_dim))

    def forward(self, x):
        x = self.conv1(x)
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        zeros = torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype)
        x = torch.cat([self.class_embedding.to(x.dtype) + zeros, x], dim=1)
        x = self.ln_pre(x + self.positional_embedding.to(x.dtype))
        x = self.transformer.resblocks(x.permute(1, 0, 2)).permute(1, 0, 2)
        return self.ln_post(x[:, 0, :]) @ self.proj


class ReferenceCLIP(nn.Module):
    """The whole model, as OpenAI's archives hold it: the image tower and a text tower."""

    def __init__(self, a: CLIPArchitecture):
        super().__init__()
        self.visual = ReferenceVisual(a)
        self.transformer = ReferenceTransformer(16, 1, 2)
        self.token_embedding = nn.Embedding(50, 16)
        self.positional_embedding = nn.Parameter(torch.randn(7, 16))
        self.ln_final = nn.LayerNorm(16)
        self.text_projection = nn.Parameter(torch.randn(16, a.embed_dim))
        self.logit_scale = nn.Parameter(torch.ones([]))

    def forward(self, image):  # traced for its parameters only: the archive keeps all of them
        return image * self.logit_scale


def to_openai_dtypes(model: nn.Module) -> nn.Module:
    """OpenAI's convert_weights: convolutions, linears, attention projections and proj in float16."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            module.weight.data = module.weight.data.half()
            if module.bias is not None:
                module.bias.data = module.bias.data.half()
        if isinstance(module, nn.MultiheadAttention):
            module.in_proj_weight.data = module.in_proj_weight.data.half()
            module.in_proj_bias.data = module.in_proj_bias.data.half()
        for name in ("proj", "text_projection"):
            if isinstance(getattr(module, name, None), nn.Parameter):
                getattr(module, name).data = getattr(module, name).data.half()
    return model


@pytest.fixture(scope="module")
def openai_archive(tmp_path_factory):
    """A TorchScript archive laid out as OpenAI's (whole model, float16 weights), and its model."""
    torch.manual_seed(0)
    model = ReferenceCLIP(SMALL).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    to_openai_dtypes(model)
    path = tmp_path_factory.mktemp("openai") / "ViT-S-8.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(model, torch.zeros(1, 3, 32, 32))
        torch.jit.save(traced, path)
    return path, model


def reference_from(state: dict) -> ReferenceVisual:
    visual = ReferenceVisual(SMALL)
    visual.load_state_dict({k[len("visual."):]: v.float() for k, v in state.items()
                            if k.startswith("visual.")})
    return visual.eval()


# ----------------------------------------------------------------------------------------------
# OpenAI's archives
# ----------------------------------------------------------------------------------------------
def test_the_archive_is_read_as_torch_jit_load_reads_it(openai_archive):
    path, _ = openai_archive
    ours = read_torchscript_tensors(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        expected = torch.jit.load(path, map_location="cpu").state_dict()
    assert list(ours) == list(expected)
    for key, value in expected.items():
        assert ours[key].dtype == value.dtype and torch.equal(ours[key], value), key
    assert ours["visual.conv1.weight"].dtype == torch.float16  # OpenAI's dtypes: half weights,
    assert ours["visual.ln_pre.weight"].dtype == torch.float32  # float layer norms
    with pytest.raises(RuntimeError, match="TorchScript"), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch.load refuses it: why we read it ourselves
        torch.load(path, weights_only=True)


def test_features_from_openais_archive_agree_with_openais_forward(openai_archive):
    path, _ = openai_archive
    net = CLIPImageEncoder(SMALL, weights=path, resize=None)
    reference = reference_from(read_state_dict(path))
    x = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    with torch.no_grad():
        expected = reference(net.preprocess(x))
    got = net(x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5 * float(expected.abs().max()))
    assert all(p.dtype == torch.float32 for p in net.parameters())  # float16 held exactly in float32
    assert torch.equal(net.conv1.weight.detach(), read_state_dict(path)["visual.conv1.weight"].float())


def test_a_malicious_archive_runs_nothing(tmp_path):
    marker = tmp_path / "created"
    name = str(marker).encode()
    # builtins.open(marker, "w"): a call that leaves a trace, in place of the module of a weight file
    payload = (b"\x80\x02cbuiltins\nopen\nX" + len(name).to_bytes(4, "little") + name
               + b"X\x01\x00\x00\x00w\x86R.")
    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("evil/data.pkl", payload)
        archive.writestr("evil/code/__torch__.py", "")
    with pytest.raises(ValueError, match="names builtins.open, which a weight file has no use for"):
        read_state_dict(path)
    assert not marker.exists()
    pickle.loads(payload).close()  # the payload is live: a plain unpickler runs it
    assert marker.exists()


def test_a_truncated_archive_is_a_clear_error(openai_archive, tmp_path):
    path, _ = openai_archive
    data = io.BytesIO()
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(data, "w") as target:
        for name in source.namelist():
            if not name.endswith("/data/0"):
                target.writestr(name, source.read(name))
    broken = tmp_path / "broken.pt"
    broken.write_bytes(data.getvalue())
    with pytest.raises(ValueError, match="could not read .* as a TorchScript archive"):
        read_state_dict(broken)


# ----------------------------------------------------------------------------------------------
# Hugging Face
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hf_pair(tmp_path_factory):
    """A Hugging Face CLIPModel snapshot (random weights), and the CLIPVisionModelWithProjection on them."""
    vision = dict(hidden_size=SMALL.width, num_hidden_layers=SMALL.layers, num_attention_heads=SMALL.heads,
                  image_size=SMALL.image_size, patch_size=SMALL.patch_size, intermediate_size=4 * SMALL.width)
    text = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    config = transformers.CLIPConfig(vision_config=vision, projection_dim=SMALL.embed_dim, text_config=text)
    full = transformers.CLIPModel(config).eval()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in full.parameters():
            parameter.copy_(0.3 * torch.randn(parameter.shape, generator=generator))
    folder = tmp_path_factory.mktemp("hf-clip")
    full.save_pretrained(folder)
    tower = transformers.CLIPVisionModelWithProjection(
        transformers.CLIPVisionConfig(**vision, projection_dim=SMALL.embed_dim)).eval()
    tower.load_state_dict({k: v for k, v in full.state_dict().items()
                           if k.startswith(("vision_model.", "visual_projection."))})
    return folder, tower


def test_agrees_with_hugging_face(hf_pair):
    folder, tower = hf_pair
    net = CLIPImageEncoder(SMALL, weights=folder, resize=None)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = tower(pixel_values=x).image_embeds
        got = net.encode(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max()))
    # and the transcription of OpenAI's forward pass gives the same on the converted weights
    reference = ReferenceVisual(SMALL)
    reference.load_state_dict(net.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(reference.eval()(x), expected, rtol=1e-4,
                                   atol=1e-4 * float(expected.abs().max()))


def test_every_hugging_face_layout_loads(hf_pair, tmp_path):
    folder, tower = hf_pair
    from safetensors.torch import load_file

    net = CLIPImageEncoder(SMALL, weights=folder / "model.safetensors")
    state = load_file(folder / "model.safetensors")
    # older pytorch_model.bin files also hold the position_ids buffers
    state["vision_model.embeddings.position_ids"] = torch.arange(17)[None]
    state["text_model.embeddings.position_ids"] = torch.arange(7)[None]
    torch.save(state, tmp_path / "pytorch_model.bin")
    x = torch.randint(0, 256, (2, 3, 40, 30), dtype=torch.uint8)
    expected = net(x)
    for weights in (folder, tmp_path, tmp_path / "pytorch_model.bin", tower.state_dict(), net.state_dict()):
        assert torch.equal(CLIPImageEncoder(SMALL, weights=weights)(x), expected), type(weights)


@pytest.mark.parametrize("how, match", [
    ("resnet", r"not the CLIP architecture layout \(OpenAI's model.*missing key.*visual\.class_embedding.*"
               r"unexpected key.*visual\.layer1"),
    ("other size", r"wrong entr.*visual\.positional_embedding: shape \(50, 32\), expected \(17, 32\)"),
    ("hf deeper", r"\(Hugging Face\): .*unexpected key.*vision_model\.encoder\.layers\.2\."),
    ("text only", r"not the CLIP architecture layout \(the image tower.*missing key.*class_embedding"),
])
def test_wrong_layouts_name_the_first_mismatching_entries(openai_archive, hf_pair, how, match):
    state = dict(read_state_dict(openai_archive[0]))
    if how == "resnet":
        state = {k: v for k, v in state.items() if not k.startswith("visual.")}
        state.update({"visual.conv1.weight": torch.zeros(32, 3, 8, 8),
                      "visual.layer1.0.conv1.weight": torch.zeros(1)})
    elif how == "other size":
        state["visual.positional_embedding"] = torch.zeros(50, 32)
    elif how == "hf deeper":
        state = dict(hf_pair[1].state_dict())
        state.update({k.replace("layers.1.", "layers.2."): v for k, v in state.items() if "layers.1." in k})
    else:
        state = {k: v for k, v in state.items() if not k.startswith("visual.")}
    with pytest.raises(ValueError, match=match):
        CLIPImageEncoder(SMALL, weights=state)


def test_bad_constructor_arguments(tmp_path):
    with pytest.raises(ValueError, match="^arch: must be one of ViT-B/32, ViT-B/16, ViT-L/14, ViT-L/14@336"):
        CLIPImageEncoder("RN50")
    with pytest.raises(ValueError, match="^resize: must be 'cmmd', 'openai', 'tf1' or None"):
        CLIPImageEncoder(SMALL, pretrained=False, resize="bicubic")
    with pytest.raises(ValueError, match="^normalize: must be True or False"):
        CLIPImageEncoder(SMALL, pretrained=False, normalize=1)
    with pytest.raises(ValueError, match="^weights: required for a custom architecture"):
        CLIPImageEncoder(SMALL)
    with pytest.raises(WeightsNotFoundError, match="^weights: no such file"):
        CLIPImageEncoder(SMALL, weights=tmp_path / "nope.pt")
    with pytest.raises(ValueError, match="^heads: must divide width"):
        CLIPArchitecture(30, 1, 4, 8, 32, 8)


# ----------------------------------------------------------------------------------------------
# Preprocessing
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    base = CLIPImageEncoder(SMALL, pretrained=False)
    return {mode: CLIPImageEncoder(SMALL, weights=base.state_dict(), resize=mode)
            for mode in ("cmmd", "openai", "tf1", None)}


def images(n=2, height=37, width=52, seed=0):
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.integers(0, 256, (n, 3, height, width), dtype=np.uint8))


def normalized(pixels: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(np.asarray(pixels).astype(np.float32) / 255.0).permute(2, 0, 1)
    mean = torch.tensor(CLIP_MEAN).view(-1, 1, 1)
    std = torch.tensor(CLIP_STD).view(-1, 1, 1)
    return (x - mean) / std


def cmmd_reference(batch, size):
    """io_util._center_crop_and_resize, then / 255 and OpenAI's normalisation (embedding.py)."""
    out = []
    for image in batch:
        im = Image.fromarray(image.permute(1, 2, 0).numpy())
        w, h = im.size
        side = min(w, h)
        top, left = (h - side) // 2, (w - side) // 2
        im = im.crop((left, top, left + side, top + side)).resize((size, size), resample=Image.BICUBIC)
        out.append(normalized(im))
    return torch.stack(out)


def openai_reference(batch, size):
    """clip.py's _transform: Resize(size, BICUBIC), CenterCrop(size), ToTensor, Normalize."""
    out = []
    for image in batch:
        im = Image.fromarray(image.permute(1, 2, 0).numpy())
        w, h = im.size
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = size, int(size * long / short)
        new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
        if (new_w, new_h) != (w, h):
            im = im.resize((new_w, new_h), Image.BICUBIC)
        top, left = int(round((new_h - size) / 2.0)), int(round((new_w - size) / 2.0))
        out.append(normalized(im.crop((left, top, left + size, top + size))))
    return torch.stack(out)


@pytest.mark.parametrize("height, width", [(37, 52), (52, 37), (33, 33), (20, 90), (32, 32)])
def test_pillow_modes_match_the_references(nets, height, width):
    x = images(height=height, width=width)
    assert torch.equal(nets["cmmd"].preprocess(x), cmmd_reference(x, 32))
    assert torch.equal(nets["openai"].preprocess(x), openai_reference(x, 32))


def test_the_crops_round_as_their_references():
    # 32 x 47: the CMMD square starts at (47 - 32) // 2 = 7 columns; OpenAI's crop of the same
    # width at round(7.5) = 8: a one-pixel shift that changes the features
    x = torch.zeros(1, 3, 32, 47, dtype=torch.uint8)
    x[..., 7] = 255
    from otmetrics.generative.features.pil_resize import resize_pil

    square = resize_pil(x, 32, method="crop-square")
    short = resize_pil(x, 32, method="short-side")
    assert int(square[0, 0, 0, 0]) == 255 and int(short[0, 0, 0, 0]) == 0


def test_tf1_and_no_resize(nets):
    x = images()
    resized = resize_bilinear_tf1(x.float(), (32, 32))
    mean = torch.tensor([255 * m for m in CLIP_MEAN]).view(1, -1, 1, 1)
    std = torch.tensor([255 * s for s in CLIP_STD]).view(1, -1, 1, 1)
    assert torch.equal(nets["tf1"].preprocess(x), (resized - mean) / std)
    square = images(height=32, width=32)
    assert torch.equal(nets[None].preprocess(square)[0], normalized(square[0].permute(1, 2, 0).numpy()))
    with pytest.raises(ValueError, match=r"^images: with resize=None, must be 32x32"):
        nets[None](x)


def test_floats_grey_numpy_and_normalization(nets):
    net = nets["cmmd"]
    x = images()
    assert torch.equal(net(x.float() / 255), net(x))
    assert torch.equal(net(x[:, :1]), net(x[:, :1].expand(-1, 3, -1, -1)))
    out = net(x.numpy())
    assert isinstance(out, np.ndarray) and out.dtype == np.float64
    unit = CLIPImageEncoder(SMALL, weights=net.state_dict(), normalize=True)(x)
    torch.testing.assert_close(unit, net(x) / net(x).norm(dim=1, keepdim=True))
    torch.testing.assert_close(unit.norm(dim=1), torch.ones(2))
    with pytest.raises(ValueError, match=r"^images: floating images must lie in \[0, 1\]"):
        net(x.float())


def test_image_features_with_clip(nets, tmp_path):
    x = images(3, 40, 30)
    for i, image in enumerate(x):
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(tmp_path / f"{i}.png")
    features = otmetrics.image_features(tmp_path, nets["cmmd"], device="cpu", progress=False, batch_size=2)
    np.testing.assert_array_equal(features, nets["cmmd"](x).numpy().astype(np.float64))


# ----------------------------------------------------------------------------------------------
# OpenAI's files: names, digests, lookup, download
# ----------------------------------------------------------------------------------------------
def test_published_files():
    assert set(CLIP_WEIGHTS) == set(CLIP_ARCHITECTURES) == set(CLIP_URLS)
    for arch, spec in CLIP_WEIGHTS.items():
        folder, name = spec.url.rsplit("/", 2)[-2:]
        assert folder == spec.sha256 and name == spec.filename  # the address carries the digest
        assert spec.aliases == (f"clip-{name[:-3].lower()}-{spec.sha256}.pt",)  # torch-fidelity's name
        assert spec.search_dirs == ("~/.cache/clip",)  # clip.load's cache
    assert CLIP_WEIGHTS["ViT-L/14@336px"].env == "OTMETRICS_CLIP_VIT_L_14_336PX_WEIGHTS"
    layout = clip_layout(CLIP_ARCHITECTURES["ViT-L/14@336px"])
    assert layout["conv1.weight"] == (1024, 3, 14, 14) and layout["positional_embedding"] == (577, 1024)
    assert layout["transformer.resblocks.23.attn.in_proj_weight"] == (3072, 1024)
    norms = [m for m in CLIPImageEncoder(SMALL, pretrained=False).modules() if isinstance(m, nn.LayerNorm)]
    assert len(norms) == 2 + 2 * SMALL.layers and all(m.eps == 1e-5 for m in norms)


@pytest.fixture
def published_small(monkeypatch, tmp_path, openai_archive):
    """'ViT-B/32' made small: the lookup of a published architecture, on an archive generated here."""
    path, _ = openai_archive
    spec = dataclasses.replace(CLIP_WEIGHTS["ViT-B/32"], sha256=sha256_of(path.read_bytes()))
    monkeypatch.setitem(clip.CLIP_ARCHITECTURES, "ViT-B/32", SMALL)
    monkeypatch.setitem(clip.CLIP_WEIGHTS, "ViT-B/32", spec)
    isolate(tmp_path, monkeypatch, "CLIP")
    return path, spec


def test_openais_and_torch_fidelitys_caches_are_searched(published_small, tmp_path):
    path, spec = published_small
    x = images(1)
    expected = CLIPImageEncoder(SMALL, weights=path)(x)
    with pytest.raises(WeightsNotFoundError, match="OTMETRICS_CLIP_VIT_B_32_WEIGHTS unset"):
        CLIPImageEncoder("ViT-B/32", download=False)
    openai_cache = tmp_path / "home" / ".cache" / "clip" / "ViT-B-32.pt"
    openai_cache.parent.mkdir(parents=True)
    openai_cache.write_bytes(path.read_bytes())
    net = CLIPImageEncoder("ViT-B/32", download=False)
    assert str(openai_cache) in net.weights_source and torch.equal(net(x), expected)
    fidelity = tmp_path / "torch_home" / "hub" / "checkpoints" / spec.aliases[0]
    fidelity.parent.mkdir(parents=True)
    fidelity.write_bytes(path.read_bytes())
    assert str(fidelity) in CLIPImageEncoder("ViT-B/32", download=False).weights_source  # hub before ~/.cache


def test_download_is_checked_against_the_digest_in_the_address(published_small, monkeypatch, tmp_path):
    path, spec = published_small
    data = path.read_bytes()
    with LocalServer({f"{spec.sha256}/ViT-B-32.pt": data, "other/ViT-B-32.pt": data[:-1]}) as server:
        monkeypatch.setenv("OTMETRICS_CLIP_VIT_B_32_URL", server.url("other/ViT-B-32.pt"))
        with pytest.raises(RuntimeError, match="checksum mismatch"):
            CLIPImageEncoder("ViT-B/32", progress=False)
        monkeypatch.setenv("OTMETRICS_CLIP_VIT_B_32_URL", server.url(f"{spec.sha256}/ViT-B-32.pt"))
        net = CLIPImageEncoder("ViT-B/32", progress=False)
    assert (tmp_path / "cache" / "ViT-B-32.pt").read_bytes() == data
    monkeypatch.setenv("OTMETRICS_CLIP_VIT_B_32_WEIGHTS", str(path))
    x = images(1)
    assert torch.equal(CLIPImageEncoder("ViT-B/32")(x), net(x))


def test_registered_names():
    for name, arch, dim in (("clip-vit-b-32", "ViT-B/32", 512), ("clip-vit-b-16", "ViT-B/16", 512),
                            ("clip-vit-l-14", "ViT-L/14", 768),
                            ("clip-vit-l-14-336px", "ViT-L/14@336px", 768)):
        entry = registry.extractor_entry(name)
        assert entry.dim == dim == CLIP_ARCHITECTURES[arch].embed_dim and entry.kwargs == {"arch": arch}
    net = registry.build_extractor("clip-vit-b-32", pretrained=False, normalize=True)
    assert isinstance(net, CLIPImageEncoder) and net.normalize and net.resize == "cmmd"
    assert otmetrics.CLIPImageEncoder is CLIPImageEncoder and "CLIPImageEncoder" in otmetrics.__all__


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_forward_is_full_float32_whatever_the_settings():
    from otmetrics.generative.features import precision

    saved = [(s, s.read()) for s in precision.precision_settings("cuda")]
    try:
        torch.set_float32_matmul_precision("high")
        torch.manual_seed(0)
        arch = CLIPArchitecture(256, 4, 4, 16, 64, 128)
        cpu = CLIPImageEncoder(arch, pretrained=False)
        gpu = CLIPImageEncoder(arch, weights=cpu.state_dict()).cuda()
        x = images(4, 70, 90)
        expected = cpu(x)
        exact = gpu(x.cuda()).cpu()
        gpu.tf32 = True
        fast = gpu(x).cpu()
        assert (exact - expected).abs().max() <= 1e-4 * expected.abs().max()
        if torch.cuda.get_device_capability() >= (8, 0):
            assert (fast - expected).abs().max() > (exact - expected).abs().max()
    finally:
        for setting, value in saved:
            setting.write(value)
