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
