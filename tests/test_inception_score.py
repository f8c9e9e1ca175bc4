"""inception_score: the original code's algorithm, closed forms, bounds, logits, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from otmetrics import inception_score


def original_is(preds, splits):
    """The loop of Salimans et al.'s released code (improved-gan, inception_score.py), written out
    again: split i is the rows [i * N // splits, (i + 1) * N // splits) -- every row, the parts
    differing in size by at most one -- then KL(p(y|x) || p(y)) per row, exp of the mean, and
    mean and std (ddof = 0) over the splits; in float64, with 0 log 0 = 0."""
    n = preds.shape[0]
    scores = []
    for i in range(splits):
        part = preds[(i * n) // splits:((i + 1) * n) // splits]
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
@given(n=st.integers(2, 150), splits=st.integers(1, 12), classes=st.integers(2, 30),
       seed=st.integers(0, 2**32 - 1))
def test_matches_the_original_code(n, splits, classes, seed):
    assume(splits <= n)
    rng = np.random.default_rng(seed)
    probs, _ = random_probs(rng, n, classes)
    mean, std = inception_score(probs, splits=splits)
    ref_mean, ref_std = original_is(probs, splits)
    assert mean == pytest.approx(ref_mean, rel=1e-12)
    assert std == pytest.approx(ref_std, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("n,splits", [(23, 4), (50001, 10)])
def test_uneven_sizes_match_the_original_code(n, splits):
    # N not a multiple of splits: the original's parts are N // splits or N // splits + 1 rows,
    # the smaller ones first (23 rows in 4 splits: 5, 6, 6, 6; 50001 in 10: 5000 x 9, then 5001).
    rng = np.random.default_rng(n)
    probs, logits = random_probs(rng, n, 8, sharpness=2.0)
    ref_mean, ref_std = original_is(probs, splits)
    mean, std = inception_score(probs, splits=splits)
    assert mean == pytest.approx(ref_mean, rel=1e-12)
    assert std == pytest.approx(ref_std, rel=1e-9)
    assert inception_score(logits, splits=splits, from_logits=True) == pytest.approx((ref_mean, ref_std),
                                                                                     rel=1e-9)


def test_uneven_split_boundaries_are_the_originals():
    # The original's slices for N = 23, splits = 4: [0, 5), [5, 11), [11, 17), [17, 23)
    # (i * 23 // 4 = 0, 5, 11, 17). Each split's score is the one-split score of its rows.
    rng = np.random.default_rng(0)
    probs, _ = random_probs(rng, 23, 5)
    parts = [probs[0:5], probs[5:11], probs[11:17], probs[17:23]]
    scores = [inception_score(part, splits=1)[0] for part in parts]
    mean, std = inception_score(probs, splits=4)
    assert mean == pytest.approx(np.mean(scores), rel=1e-12)
    assert std == pytest.approx(np.std(scores), rel=1e-9)
    # Every row counts, the last one included.
    changed = probs.copy()
    changed[22] = np.roll(changed[22], 1)
    assert inception_score(changed, splits=4)[0] != pytest.approx(mean, rel=1e-9)


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
    (np.full(10, 0.1), {}, r"probs: expected 2 dimension\(s\), got 1 \(shape \(10,\)\)"),
    (np.array([[0.5, np.nan], [0.5, 0.5]]), {}, "probs: probabilities must be finite, got nan"),
    (np.array([[0.5, np.inf], [0.5, 0.5]]), {"from_logits": True}, "probs: logits must be finite, got inf"),
    (np.array([[1.5, -0.5], [0.5, 0.5]]), {}, r"probs: probabilities must lie in \[0, 1\].*from_logits=True"),
    (np.array([[0.5, 0.6], [0.5, 0.5]]), {}, "probs: each row must sum to 1, got a row summing to 1.1"),
    (np.full((10, 2), 0.5), {"splits": 11}, r"splits: must be at most the number of samples \(10\), got 11"),
    (np.full((10, 2), 0.5), {"splits": 0}, "splits: must be finite and > 0, got 0"),
    (np.full((10, 2), 0.5), {"splits": 2.0}, "splits: must be an integer, got 2.0"),
    (np.full((10, 2), 0.5), {"splits": True}, "splits: must be an integer, got True"),
    (np.full((10, 2), 0.5), {"from_logits": "yes"}, "from_logits: must be True or False"),
])
def test_bad_input(probs, kw, match):
    with pytest.raises(ValueError, match=match):
        inception_score(probs, **kw)
