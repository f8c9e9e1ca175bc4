"""Image folders -> batches -> features: discovery, decoding, batching, devices, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from otmetrics import FIDInceptionV3, image_features, iter_image_features
from otmetrics.generative.features.images import IMAGE_EXTENSIONS, iter_image_batches, list_images, read_image, resolve_device




def save(path, array, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


def solid(value, size=(6, 5)):
    return np.full((*size, 3), value, dtype=np.uint8)


@pytest.fixture
def folder(tmp_path):
    """Five PNG images with known colours, in nested folders, plus files that are not images."""
    root = tmp_path / "images"
    save(root / "b.png", solid(20))
    save(root / "a.PNG", solid(10))
    save(root / "sub" / "c.png", solid(30))
    save(root / "sub" / "deeper" / "d.png", solid(40))
    save(root / "z.png", solid(50))
    (root / "notes.txt").write_text("not an image")
    (root / "sub" / "labels.csv").write_text("a,b")
    return root


def red_channel(x):
    return x[:, 0].mean(dim=(1, 2))[:, None]


# ----------------------------------------------------------------------------------------------
# Finding and decoding files
# ----------------------------------------------------------------------------------------------
def test_list_images_recursive_sorted_and_case_insensitive(folder):
    names = [p.relative_to(folder).as_posix() for p in list_images(folder)]
    assert names == ["a.PNG", "b.png", "sub/c.png", "sub/deeper/d.png", "z.png"]
    assert [p.name for p in list_images(folder, recursive=False)] == ["a.PNG", "b.png", "z.png"]
    assert list_images(folder / "z.png") == [folder / "z.png"]
    assert ".png" in IMAGE_EXTENSIONS and ".jpg" in IMAGE_EXTENSIONS and ".jpeg" in IMAGE_EXTENSIONS


def test_list_images_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    with pytest.raises(ValueError, match=r"path: no image files .* under '.*empty'"):
        list_images(tmp_path / "empty")
    with pytest.raises(ValueError, match="path: no such file or folder"):
        list_images(tmp_path / "missing")
    with pytest.raises(ValueError, match="not an image file"):
        list_images(tmp_path / "empty" / "readme.txt")


def test_read_image_converts_to_rgb(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (7, 9, 3), dtype=np.uint8)
    assert np.array_equal(read_image(save(tmp_path / "rgb.png", rgb)), rgb)
    grey = np.arange(63, dtype=np.uint8).reshape(7, 9)
    out = read_image(save(tmp_path / "grey.png", grey))
    assert out.shape == (7, 9, 3) and all(np.array_equal(out[..., c], grey) for c in range(3))
    rgba = np.dstack([rgb, np.zeros((7, 9), np.uint8)])
    assert np.array_equal(read_image(save(tmp_path / "rgba.png", rgba)), rgb)  # alpha dropped
    jpeg = read_image(save(tmp_path / "photo.jpg", solid(128, (16, 16)), quality=95))
    assert jpeg.shape == (16, 16, 3) and np.abs(jpeg.astype(int) - 128).max() <= 2


def test_unreadable_files_are_named(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG definitely not a png")
    with pytest.raises(ValueError, match="^path: could not read image '.*broken.png'"):
        read_image(broken)
    whole = save(tmp_path / "t.jpg", np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(whole.read_bytes()[:300])
    with pytest.raises(ValueError, match="^path: could not read image '.*truncated.jpg'"):
        read_image(truncated)
    with pytest.raises(ValueError, match="^path: could not read image '.*missing.png'"):
        read_image(tmp_path / "missing.png")


# ----------------------------------------------------------------------------------------------
# Features
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("batch_size", [1, 2, 50])
def test_features_in_sorted_order_for_any_batch_size(folder, batch_size):
    features = image_features(folder, red_channel, batch_size=batch_size, device="cpu", progress=False)
    assert features.dtype == np.float64 and features.shape == (5, 1)
    np.testing.assert_allclose(features[:, 0], np.array([10, 20, 30, 40, 50]) / 255, rtol=1e-6)  # float32


def test_mixed_sizes_keep_their_order(tmp_path):
    values = [10, 20, 30, 40, 50, 60]
    sizes = [(4, 4), (8, 6), (4, 4), (3, 9), (8, 6), (4, 4)]
    for i, (value, size) in enumerate(zip(values, sizes)):
        save(tmp_path / f"{i}.png", solid(value, size))
    features = image_features(tmp_path, red_channel, batch_size=4, device="cpu", progress=False)
    np.testing.assert_allclose(features[:, 0], np.array(values) / 255, rtol=1e-6)


def test_worker_processes_give_the_same_features(folder):
    serial = image_features(folder, red_channel, batch_size=2, device="cpu", progress=False)
    parallel = image_features(folder, red_channel, batch_size=2, device="cpu", progress=False, num_workers=2)
    np.testing.assert_array_equal(serial, parallel)


@pytest.mark.parametrize("num_workers", [0, 1])
def test_an_unreadable_image_stops_the_run_and_is_named(folder, num_workers):
    (folder / "sub" / "e.png").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="^source: could not read image '.*e.png'"):
        image_features(folder, red_channel, batch_size=2, device="cpu", progress=False,
                       num_workers=num_workers)


def test_module_output_is_flattened_and_tuples_are_kept(folder):
    class TwoHeads(torch.nn.Module):
        def forward(self, x):
            return x.mean(dim=(2, 3), keepdim=True), x.amax(dim=(1, 2, 3))

    means, maxima = image_features(folder, TwoHeads(), device="cpu", progress=False, batch_size=3)
    assert means.shape == (5, 3) and maxima.shape == (5, 1)
    np.testing.assert_allclose(maxima.ravel(), np.array([10, 20, 30, 40, 50]) / 255, rtol=1e-6)


def test_preprocess_decides_what_the_model_sees(folder):
    seen = []

    def record(x):
        seen.append(x.dtype)
        return x.float().mean(dim=(1, 2, 3))[:, None]

    raw = image_features(folder, record, preprocess=lambda x: x, device="cpu", progress=False)
    assert seen[0] == torch.uint8
    np.testing.assert_allclose(raw[:, 0], [10, 20, 30, 40, 50])
    image_features(folder, record, device="cpu", progress=False)
    assert seen[-1] == torch.float32  # default for any model: float in [0, 1]


def test_inception_gets_uint8_and_matches_a_direct_call(tmp_path):
    rng = np.random.default_rng(2)
    arrays = [rng.integers(0, 256, (75, 75, 3), dtype=np.uint8) for _ in range(3)]
    for i, array in enumerate(arrays):
        save(tmp_path / f"{i}.png", array)
    torch.manual_seed(0)
    net = FIDInceptionV3(pretrained=False, resize=None)
    features = image_features(tmp_path, net, batch_size=2, device="cpu", progress=False)
    with torch.no_grad():
        direct = net(torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2))
    assert features.shape == (3, 2048)
    np.testing.assert_allclose(features, direct.double().numpy(), rtol=1e-5, atol=1e-6)


def test_default_model_is_the_fid_inception(tmp_path):
    for i in range(2):
        save(tmp_path / "imgs" / f"{i}.png", solid(40 * i + 10, (12, 12)))
    torch.manual_seed(0)
    net = FIDInceptionV3(pretrained=False)
    weights = tmp_path / "w.pth"
    torch.save(net.state_dict(), weights)
    features = image_features(tmp_path / "imgs", weights=weights, device="cpu", progress=False)
    logits = image_features(tmp_path / "imgs", weights=weights, device="cpu", progress=False,
                            output="logits_unbiased")
    assert features.shape == (2, 2048) and logits.shape == (2, 1008)
    np.testing.assert_allclose(logits, features @ net.fc.weight.detach().double().numpy().T, rtol=1e-4,
                               atol=1e-5)


def test_streaming_yields_one_array_per_batch(folder):
    chunks = list(iter_image_features(folder, red_channel, batch_size=2, device="cpu", progress=False))
    assert [c.shape for c in chunks] == [(2, 1), (2, 1), (1, 1)]
    batches = list(iter_image_batches(folder, batch_size=3))
    assert [len(images) for images, _ in batches] == [3, 2]
    images, files = batches[0]
    assert images[0].dtype == torch.uint8 and images[0].shape == (3, 6, 5) and files[0].name == "a.PNG"


def test_the_caller_keeps_its_autograd_mode_between_batches(folder):
    # The model runs under inference mode; the generator must not leave it on in the caller's
    # code while it is suspended between two batches.
    assert torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
    inside = []

    def model(x):
        inside.append((torch.is_grad_enabled(), torch.is_inference_mode_enabled()))
        return x.mean(dim=(2, 3))

    batches = iter_image_features(folder, model, batch_size=2, device="cpu", progress=False)
    first = next(batches)
    assert inside == [(False, True)]
    assert torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
    weight = torch.ones(2, requires_grad=True)
    (weight * torch.from_numpy(first[:, 0]).float()).sum().backward()  # autograd works here
    np.testing.assert_allclose(weight.grad.numpy(), first[:, 0], rtol=1e-6)
    assert not torch.is_inference(torch.ones(1))
    rest = list(batches)
    assert len(rest) == 2 and inside == [(False, True)] * 3
    assert torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
    # abandoning the generator half-way leaves nothing behind either
    batches = iter_image_features(folder, model, batch_size=2, device="cpu", progress=False)
    next(batches)
    batches.close()
    assert torch.is_grad_enabled() and not torch.is_inference_mode_enabled()


def test_progress_bar_on_stderr(folder, capsys):
    image_features(folder, red_channel, device="cpu", progress=True)
    assert "5/5" in capsys.readouterr().err
    image_features(folder, red_channel, device="cpu", progress=False)
    assert capsys.readouterr().err == ""


def test_a_list_of_files(folder):
    files = [folder / "z.png", folder / "a.PNG"]
    np.testing.assert_allclose(image_features(files, red_channel, device="cpu", progress=False)[:, 0],
                               [50 / 255, 10 / 255], rtol=1e-6)
    with pytest.raises(ValueError, match="source: no such file"):
        image_features([folder / "nope.png"], red_channel, device="cpu")


# ----------------------------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------------------------
def test_errors_are_raised_before_iterating(tmp_path, folder):
    with pytest.raises(ValueError, match="path: no such file or folder"):
        iter_image_features(tmp_path / "missing", red_channel)
    with pytest.raises(ValueError, match="batch_size"):
        iter_image_features(folder, red_channel, batch_size=0)
    with pytest.raises(ValueError, match="num_workers"):
        iter_image_batches(folder, num_workers=-1)


@pytest.mark.parametrize("kwargs, match", [
    ({"batch_size": 2.5}, "batch_size: must be an integer"),
    ({"batch_size": True}, "batch_size: must be an integer"),
    ({"device": "gpu7"}, "device: not a torch device"),
    ({"device": "cpu", "model": 42}, "model: expected a torch.nn.Module"),
    ({"device": "cpu", "source": 3}, "source: expected a folder"),
    ({"device": "cpu", "source": []}, "source: expected a folder"),
    ({"device": "cpu", "weights": "w.pth"}, "weights: only used to build the default model"),
    ({"device": "cpu", "output": "pool3"}, "output: selects an output of FIDInceptionV3"),
])
def test_bad_arguments(folder, kwargs, match):
    arguments = {"source": folder, "model": red_channel, **kwargs}
    with pytest.raises(ValueError, match=match):
        image_features(arguments.pop("source"), arguments.pop("model"), progress=False, **arguments)


def test_non_finite_features_name_the_image(folder):
    def nan_for_dark(x):
        out = x.mean(dim=(1, 2, 3))[:, None]
        return torch.where(out < 0.1, torch.nan, out)

    with pytest.raises(ValueError, match="non-finite features for image '.*a.PNG'"):
        image_features(folder, nan_for_dark, device="cpu", progress=False)


def test_model_output_must_have_one_row_per_image(folder):
    with pytest.raises(ValueError, match=r"model: .*one row per image.*got shape \(\) for a batch of 5"):
        image_features(folder, lambda x: x.mean(), device="cpu", progress=False)
    with pytest.raises(ValueError, match="model: .*one row per image.*got 'nothing' for a batch of 5"):
        image_features(folder, lambda x: "nothing", device="cpu", progress=False)
    with pytest.raises(ValueError, match="one row per image"):
        image_features(folder, lambda x: x[:1].mean(dim=(1, 2, 3)), device="cpu", progress=False,
                       batch_size=2)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_requested_without_cuda():
    with pytest.raises(ValueError, match="device: CUDA is not available"):
        resolve_device("cuda")
    assert resolve_device(None) == torch.device("cpu")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_features_match_cpu(tmp_path):
    rng = np.random.default_rng(3)
    for i in range(4):
        save(tmp_path / f"{i}.png", rng.integers(0, 256, (40 + 5 * i, 50, 3), dtype=np.uint8))
    torch.manual_seed(0)
    net = FIDInceptionV3(pretrained=False)
    cpu = image_features(tmp_path, net, device="cpu", progress=False, batch_size=3)
    gpu = image_features(tmp_path, net, device="cuda", progress=False, batch_size=3, num_workers=2)
    assert next(net.parameters()).device.type == "cuda"
    # float32 on both (TF32 off): only the summation order of the kernels differs
    np.testing.assert_allclose(gpu, cpu, rtol=1e-4, atol=1e-4)
