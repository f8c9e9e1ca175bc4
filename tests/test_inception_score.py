"""inception_score: the original code's algorithm, closed forms, bounds, logits, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from otmetrics import inception_score


def original_is(preds, splits):
    """The algorithm of Salimans et al.'s released code (contiguous splits of N // splits rows,
    KL(p(y|x) || p(y)) per row, exp of the mean; mean and std with ddof = 0), in float64."""
    scores = []
    size = preds.shape[0] // splits
    for k in range(splits):
        part = preds[k * size:(k + 1) * size]
        marginal = np.mean(part, 0, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            kl = np.where(part > 0, part * (np.log(part) - np.log(marginal)), 0.0)
        scores.append(np.exp(np.mean(np.sum(kl, 1))))
    return float(np.mean(scores)), float(np.std(scores))


def random_probs(rng, n, c, sharpness=3.0):
    logits = rng.normal(size=(n, c)) * sharpness
    p = np.exp(logits - logits.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True), logits


@settings(max_examples=25, deadline=None)
@given(per_split=st.integers(1, 20), splits=st.integers(1, 10), classes=st.integers(2, 30),
       seed=st.integers(0, 2**32 - 1))
def test_matches_the_original_code(per_split, splits, classes, seed):
    rng = np.random.default_rng(seed)
    probs, _ = random_probs(rng, per_split * splits, classes)
    if per_split * splits < 2:
        return
    mean, std = inception_score(probs, splits=splits)
    ref_mean, ref_std = original_is(probs, splits)
    assert mean == pytest.approx(ref_mean, rel=1e-12)
    assert std == pytest.approx(ref_std, rel=1e-9, abs=1e-12)


def test_uneven_split_uses_every_row():
    rng = np.random.default_rng(0)
    probs, _ = random_probs(rng, 23, 5)
    parts = np.array_split(probs, 4)  # sizes 6, 6, 6, 5
    scores = [original_is(p, 1)[0] for p in parts]
    mean, std = inception_score(probs, splits=4)
    assert mean == pytest.approx(np.mean(scores), rel=1e-12)
    assert std == pytest.approx(np.std(scores), rel=1e-9)


def test_closed_forms_and_bounds():
    # Identical rows: every KL is 0, IS = 1 (the minimum).
    assert inception_score(np.tile([0.2, 0.5, 0.3], (10, 1)), splits=2) == pytest.approx((1.0, 0.0))
    # Confident and evenly spread over C classes: IS = C (the maximum).
    mean, std = inception_score(np.eye(7)[np.arange(70) % 7], splits=10)
    assert mean == pytest.approx(7.0, rel=1e-14) and std == pytest.approx(0.0, abs=1e-12)
    # Confident but only 2 of 7 classes: IS = 2.
    assert inception_score(np.eye(7)[np.arange(20) % 2], splits=1)[0] == pytest.approx(2.0, rel=1e-14)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(2, 60), classes=st.integers(2, 12), seed=st.integers(0, 2**32 - 1),
       sharpness=st.floats(0.0, 20.0))
def test_bounds_and_permutation_invariance(n, classes, seed, sharpness):
    rng = np.random.default_rng(seed)
    probs, _ = random_probs(rng, n, classes, sharpness)
    mean, _ = inception_score(probs, splits=1)
    assert 1.0 - 1e-12 <= mean <= classes + 1e-9
    # One split: the order of rows and of classes does not matter.
    perm = inception_score(probs[rng.permutation(n)][:, rng.permutation(classes)], splits=1)[0]
    assert perm == pytest.approx(mean, rel=1e-12)


def test_from_logits_equals_softmax_and_is_exact_for_confident_logits():
    rng = np.random.default_rng(1)
    probs, logits = random_probs(rng, 40, 6)
    assert inception_score(logits, splits=4, from_logits=True) == pytest.approx(
        inception_score(probs, splits=4), rel=1e-12)
    # Logits shifted per row are the same distribution.
    shifted = logits + rng.normal(size=(40, 1)) * 100
    assert inception_score(shifted, splits=4, from_logits=True) == pytest.approx(
        inception_score(logits, splits=4, from_logits=True), rel=1e-10)
    # Extremely confident logits: probabilities underflow to exact 0/1, the score is the
    # number of classes used, and nothing is NaN.
    confident = np.where(np.eye(6, dtype=bool)[np.arange(60) % 6], 800.0, -800.0)
    assert inception_score(confident, splits=2, from_logits=True)[0] == pytest.approx(6.0, rel=1e-12)


def test_zero_probabilities_are_fine():
    probs = np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    mean, _ = inception_score(probs, splits=1)
    assert np.isfinite(mean)
    assert mean == pytest.approx(original_is(probs, 1)[0], rel=1e-12)


def test_float32_rows_are_renormalised():
    rng = np.random.default_rng(2)
    probs, _ = random_probs(rng, 50, 1008)
    p32 = probs.astype(np.float32)
    assert inception_score(p32, splits=5)[0] == pytest.approx(inception_score(probs, splits=5)[0], rel=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_in_torch_out(dtype):
    rng = np.random.default_rng(3)
    probs, logits = random_probs(rng, 20, 4)
    mean, std = inception_score(torch.tensor(logits, dtype=dtype), splits=2, from_logits=True)
    assert isinstance(mean, torch.Tensor) and mean.dtype == dtype and std.ndim == 0
    assert float(mean) == pytest.approx(inception_score(probs, splits=2)[0], rel=1e-5)


@pytest.mark.parametrize("probs,kw,match", [
    (np.full((1, 3), 1 / 3), {}, "probs: need at least 2 samples, got 1"),
    (np.full((10, 1), 1.0), {}, "probs: need at least 2 classes, got 1"),
    (np.full(10, 0.1), {}, r"probs: expected an array of shape \(N, classes\)"),
    (np.array([[0.5, np.nan], [0.5, 0.5]]), {}, "probs: values must be finite"),
    (np.array([[1.5, -0.5], [0.5, 0.5]]), {}, r"probs: probabilities must lie in \[0, 1\].*from_logits=True"),
    (np.array([[0.5, 0.6], [0.5, 0.5]]), {}, "probs: each row must sum to 1, got a row summing to 1.1"),
    (np.full((10, 2), 0.5), {"splits": 11},
     r"splits: must be an integer between 1 and the number of samples \(10\)"),
    (np.full((10, 2), 0.5), {"splits": 0}, "splits: must be an integer between 1"),
    (np.full((10, 2), 0.5), {"splits": 2.0}, "splits: must be an integer between 1"),
    (np.full((10, 2), 0.5), {"from_logits": "yes"}, "from_logits: must be True or False"),
])
def test_bad_input(probs, kw, match):
    with pytest.raises(ValueError, match=match):
        inception_score(probs, **kw)
