"""otmetrics.generative.features.precision: full float32 for any extractor's forward pass."""

from __future__ import annotations

import pytest
import torch

from otmetrics.generative.features import precision
from otmetrics.generative.features.precision import PrecisionSetting, full_float32, precision_settings


class Fake(PrecisionSetting):
    def __init__(self, name, value):
        self.value = value
        super().__init__(name, lambda: self.value, self._set, ("exact",), "exact")

    def _set(self, value):
        self.value = value


@pytest.fixture
def fake(monkeypatch):
    setting = Fake("test.fake", "fast")
    monkeypatch.setattr(precision, "precision_settings",
                        lambda device_type: [setting] if str(device_type) == "cpu" else [])
    return setting


def test_switches_and_restores(fake):
    with full_float32("cpu"):
        assert fake.value == "exact"
    assert fake.value == "fast"
    with full_float32(torch.device("cpu")):  # a device works as well as its type
        assert fake.value == "exact"
    with full_float32("cpu", enabled=False):
        assert fake.value == "fast"
    with full_float32("meta"):  # nothing to switch there
        assert fake.value == "fast"


def test_nested_blocks_restore_once_at_the_outermost_exit(fake):
    with full_float32("cpu"):
        with full_float32("cpu"):
            assert fake.value == "exact"
        assert fake.value == "exact"  # the outer block still runs
    assert fake.value == "fast"


def test_restores_when_the_body_raises(fake):
    with pytest.raises(KeyError):
        with full_float32("cpu"):
            raise KeyError("boom")
    assert fake.value == "fast"
    assert precision._PRECISION_STATE["test.fake"][0] == 0


def test_a_failing_write_leaves_nothing_half_switched(monkeypatch):
    good, bad = Fake("test.good", "fast"), Fake("test.bad", "fast")

    def refuse(value):
        raise RuntimeError("read-only")

    bad.write = refuse
    monkeypatch.setattr(precision, "precision_settings", lambda device_type: [good, bad])
    with pytest.raises(RuntimeError, match="read-only"):
        with full_float32("cpu"):
            pass  # pragma: no cover - never entered
    assert good.value == "fast"
    assert all(state[0] == 0 for state in precision._PRECISION_STATE.values())


def test_real_settings_are_listed_per_device():
    assert precision_settings("meta") == [] and precision_settings("mps") == []
    for device_type in ("cpu", "cuda"):
        settings = precision_settings(device_type)
        assert settings and all(isinstance(s, PrecisionSetting) for s in settings)
        assert len({s.name for s in settings}) == len(settings)
    names = [s.name for s in precision_settings("cpu")]
    assert [s.name for s in precision_settings(torch.device("cpu"))] == names


@pytest.mark.parametrize("bad", [3, None, ["cpu"]])
def test_bad_device_type(bad):
    with pytest.raises(ValueError, match="^device_type: "):
        precision_settings(bad)
    with pytest.raises(ValueError, match="^device_type: "):
        with full_float32(bad):
            pass  # pragma: no cover - never entered
