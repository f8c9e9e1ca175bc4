"""otmetrics.generative.features.state_dicts: reading weight files safely and checking them."""

from __future__ import annotations

import pytest
import torch

from otmetrics.generative.features.state_dicts import check_finite, check_layout, read_state_dict

LAYOUT = {"a.weight": (4, 3), "a.bias": (4,), "bn.running_mean": (4,), "bn.num_batches_tracked": ()}


def state(**changes):
    values = {"a.weight": torch.zeros(4, 3), "a.bias": torch.zeros(4), "bn.running_mean": torch.zeros(4)}
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


def test_a_matching_state_dict_passes():
    check_layout(state(), LAYOUT)  # the counter is optional on both sides
    check_layout(state(**{"bn.num_batches_tracked": torch.tensor(0)}), LAYOUT)


@pytest.mark.parametrize("changes, match", [
    ({"a.bias": None}, "1 missing key.*a.bias"),
    ({"extra": torch.zeros(1)}, "1 unexpected key.*extra"),
    ({"a.weight": torch.zeros(3, 4)}, r"1 wrong entry, e.g. a.weight: shape \(3, 4\), expected \(4, 3\)"),
    ({"a.bias": [0.0] * 4}, "a.bias: not a tensor"),
    ({"a.bias": torch.zeros(4, dtype=torch.int64)}, "a.bias must hold floating values"),
    ({"a.bias": torch.tensor([0.0, float("nan"), 0.0, 0.0])}, "a.bias must hold finite"),
])
def test_differences_are_named(changes, match):
    with pytest.raises(ValueError, match=f"^file.pth: .*{match}"):
        check_layout(state(**changes), LAYOUT, "file.pth", name="toy layout")


def test_all_kinds_of_difference_in_one_message():
    broken = state(**{"a.bias": None, "x": torch.zeros(1), "y": torch.zeros(1), "z": torch.zeros(1),
                      "w": torch.zeros(1), "a.weight": torch.zeros(1)})
    with pytest.raises(ValueError) as info:
        check_layout(broken, LAYOUT, name="toy layout")
    message = str(info.value)
    assert message.startswith("weights: not the toy layout: 1 missing key(s), e.g. a.bias; "
                              "4 unexpected key(s), e.g. x, y, z; 1 wrong entry, e.g. a.weight: shape (1,)")


def test_values_are_optional_to_check():
    with_nan = state(**{"a.bias": torch.full((4,), float("nan"))})
    check_layout(with_nan, LAYOUT, check_values=False)
    with pytest.raises(ValueError, match="finite"):
        check_finite(with_nan.items())
    check_finite({"n": torch.tensor([1, 2])}.items())  # integers are finite
    with pytest.raises(ValueError, match="^src: entry h must hold finite"):
        check_finite({"h": torch.tensor([float("-inf")], dtype=torch.float16)}.items(), "src")


def test_not_a_mapping():
    with pytest.raises(ValueError, match="^weights: expected a state dict .*got list"):
        check_layout([torch.zeros(1)], LAYOUT)


def test_read_state_dict_refuses_code(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"f": print}, path)  # a pickled function: weights_only=True refuses to load it
    with pytest.raises(ValueError, match="could not read .*evil.pth"):
        read_state_dict(path)
    with pytest.raises(ValueError, match="could not read .*missing.pth"):
        read_state_dict(tmp_path / "missing.pth")
    good = tmp_path / "good.pth"
    torch.save({"w": torch.arange(3.0)}, good)
    assert torch.equal(read_state_dict(good)["w"], torch.arange(3.0))


# ----------------------------------------------------------------------------------------------
# Other file formats, and layouts converted from another naming
# ----------------------------------------------------------------------------------------------
def test_safetensors_files_are_read_whatever_their_name(tmp_path):
    from safetensors.torch import save_file

    from otmetrics.generative.features.state_dicts import is_safetensors_file

    tensors = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.ones(2, dtype=torch.float16)}
    for name in ("model.safetensors", "weights.bin"):
        save_file(tensors, tmp_path / name)
        read = read_state_dict(tmp_path / name)
        assert is_safetensors_file(tmp_path / name) and read.keys() == tensors.keys()
        assert all(torch.equal(read[k], v) and read[k].dtype == v.dtype for k, v in tensors.items())
    torch.save(tensors, tmp_path / "torch.pth")
    assert not is_safetensors_file(tmp_path / "torch.pth") and not is_safetensors_file(tmp_path / "missing")
    truncated = (tmp_path / "model.safetensors").read_bytes()[:-5]
    (tmp_path / "truncated.safetensors").write_bytes(truncated)
    with pytest.raises(ValueError, match="could not read .* as a safetensors file"):
        read_state_dict(tmp_path / "truncated.safetensors")


def test_convert_state_dict_concatenates_transposes_and_names_the_files_keys():
    from otmetrics.generative.features.state_dicts import SourceKeys, convert_state_dict, source_layout

    layout = {"qkv": (6, 2), "proj": (2, 3), "norm": (2,)}
    sources = {"qkv": SourceKeys(("q", "k", "v"), "cat"), "proj": SourceKeys(("p",), "transpose"),
               "norm": SourceKeys(("ln",))}
    assert source_layout(layout, sources) == {"q": (2, 2), "k": (2, 2), "v": (2, 2), "p": (3, 2), "ln": (2,)}
    q, k, v, p = (torch.randn(2, 2), torch.randn(2, 2), torch.randn(2, 2), torch.randn(3, 2))
    file = {"q": q, "k": k, "v": v, "p": p, "ln": torch.ones(2), "text.w": torch.ones(1)}
    out = convert_state_dict(file, layout, sources, name="toy", ignore=lambda key: key.startswith("text."))
    assert torch.equal(out["qkv"], torch.cat([q, k, v])) and torch.equal(out["proj"], p.T)
    assert torch.equal(out["norm"], torch.ones(2)) and set(out) == set(layout)
    with pytest.raises(ValueError, match=r"^my\.bin: not the toy layout: 1 unexpected key\(s\), e\.g\. text"):
        convert_state_dict(file, layout, sources, "my.bin", name="toy layout")
    with pytest.raises(ValueError, match=r"1 wrong entry, e\.g\. p: shape \(2, 3\), expected \(3, 2\)"):
        convert_state_dict({**file, "p": p.T}, layout, sources, name="toy",
                           ignore=lambda key: key == "text.w")
    with pytest.raises(ValueError, match="^weights: expected a state dict"):
        convert_state_dict([1], layout, sources, name="toy")
    with pytest.raises(ValueError, match="^keys: 'transpose' takes exactly one key"):
        SourceKeys(("a", "b"), "transpose")
    with pytest.raises(ValueError, match="^how: must be 'same', 'cat' or 'transpose'"):
        SourceKeys(("a",), "stack")
