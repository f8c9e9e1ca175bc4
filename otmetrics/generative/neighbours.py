r"""Exact nearest-neighbour radii and ball memberships between two feature sets, in blocks.

The machinery of :func:`otmetrics.prdc`: squared Euclidean distances between the rows of two
sets, never more than one ``chunk x chunk`` block at a time, with every decision that compares a
distance to a radius made on the exact distance.

**Fast and exact.** A block of squared distances is one matrix product of augmented rows,
:math:`[\hat x, \lVert \hat x \rVert^2, 1] \cdot [-2 \hat y, 1, \lVert \hat y \rVert^2]
= \lVert \hat x - \hat y \rVert^2`, on the points centred on their pooled mean
(:math:`\hat x`), in the working precision :math:`u` (float32 for float32 features, float64 for
float64 ones). Its rounding error is at most

.. math::

    \delta(x, y) = \big((2d + 16)\, u + (2d + 4)\, u_{64}\big)
    \big(\lVert \hat x \rVert^2 + \lVert \hat y \rVert^2\big)

(Higham's :math:`\gamma_{d+2}` for the augmented dot product, the rounding of the centred
points and of their norms, and that of the float64 exact value). A comparison of a distance with
a radius whose fast value lies within that bound is decided again on the exact squared
distance, the float64 sum of the squared differences of the original coordinates by a fixed
summation tree (:func:`tree_sum`), so that a generated point that copies a real one ties with
it bit for bit. Radii are known first as intervals of width about :math:`2\delta` and made exact
only for the points whose balls are compared with a distance inside that band. On features of
real networks a few pairs in 100,000 are recomputed; ties (duplicated or memorised samples)
always are, and are resolved as the definitions say.

**Passes.** Within a set, each unordered pair is computed once (blocks above the diagonal,
and the sub-blocks on and above the diagonal of the diagonal blocks) and the ``k + max(k, 8)``
smallest fast values of each row are kept by ``topk``. Between the sets, each block is
compared four times with per-point thresholds, and the counts are read by matrix-vector
products of the 0/1 blocks: no list of pairs, however many balls overlap. On a GPU the
products run in full IEEE float32 (TF32 would break the bound, see
:func:`~otmetrics.generative.features.precision.full_float32`).
"""

from __future__ import annotations

import math

from .kernels import BLOCK_ENTRIES

__all__ = ["DistanceBlocks", "RadiusBounds", "kth_neighbour_radii", "ball_hits", "default_chunk_size",
           "tree_sum"]

#: Candidates kept per row beyond the k-th during the radius pass (at least this many, and at
#: least k): a margin that lets the radii be resolved exactly from the kept candidates on all but
#: degenerate data.
EXTRA_CANDIDATES = 8


def default_chunk_size(d: int) -> int:
    """Rows per block: 2048 (blocks of 16 MB in float32), fewer for rows longer than 8192.

    Examples
    --------
    >>> default_chunk_size(1024)
    2048
    """
    side = int(math.isqrt(BLOCK_ENTRIES))
    return max(128, min(side, 4 * BLOCK_ENTRIES // max(d, 1)))


def tree_sum(v):
    """Row sums of a 2-D tensor by a fixed pairwise tree: the same value for the same row whatever
    the other rows, the device or the number of rows (a reduction kernel may change its order
    with the shape).

    Examples
    --------
    >>> import torch
    >>> tree_sum(torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=torch.float64))
    tensor([ 6., 15.], dtype=torch.float64)
    """
    import torch

    width = v.shape[1]
    size = 1 << max(0, (width - 1).bit_length())
    if size != width:
        v = torch.nn.functional.pad(v, (0, size - width))
    while v.shape[1] > 1:
        half = v.shape[1] // 2
        v = v[:, :half] + v[:, half:]
    return v[:, 0]


class DistanceBlocks:
    """One or two point sets prepared for blocked squared distances.

    Parameters
    ----------
    sets : list of torch.Tensor
        ``(n_s, d)`` floating tensors on one device: the original features, from which exact
        distances are computed.
    work_dtype : torch.dtype
        The precision of the fast blocks (float32 or float64).

    Attributes
    ----------
    sq : list of torch.Tensor
        float64 squared norms of the centred points.
    factor : float
        The error bound of a fast squared distance is ``factor * (sq[s][i] + sq[t][j])``.
    recomputed : int
        How many squared distances were computed exactly so far.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[0.0, 0.0], [3.0, 4.0]], dtype=torch.float64)
    >>> blocks = DistanceBlocks([x], torch.float64)
    >>> blocks.block(0, slice(0, 2), blocks.right(0, slice(0, 2)))
    tensor([[ 0., 25.],
            [25.,  0.]], dtype=torch.float64)
    >>> blocks.exact(0, torch.tensor([0]), 0, torch.tensor([1]))
    tensor([25.], dtype=torch.float64)
    """

    def __init__(self, sets, work_dtype):
        import torch

        self.original = list(sets)
        self.device = self.original[0].device
        self.dim = d = int(self.original[0].shape[1])
        self.dtype = work_dtype
        total = sum(int(s.shape[0]) for s in self.original)
        centre = sum(s.sum(0, dtype=torch.float64) for s in self.original) / total
        step = max(1, BLOCK_ENTRIES // max(d, 1))
        self.left, self.sq = [], []
        for s in self.original:  # [x - centre, |x - centre|^2, 1], built chunk by chunk
            left = torch.empty((s.shape[0], d + 2), dtype=work_dtype, device=self.device)
            sq = torch.empty(s.shape[0], dtype=torch.float64, device=self.device)
            for i0 in range(0, s.shape[0], step):
                part = left[i0:i0 + step]
                part[:, :d] = s[i0:i0 + step].to(torch.float64) - centre
                rounded = part[:, :d].to(torch.float64)
                sq[i0:i0 + step] = (rounded * rounded).sum(1)
                part[:, d] = sq[i0:i0 + step]
                part[:, d + 1] = 1.0
            self.left.append(left)
            self.sq.append(sq)
        # The fast value's error (working precision) plus the rounding of the exact value itself
        # (float64), so that the two are never further apart than the bound.
        self.factor = ((2 * d + 16) * torch.finfo(work_dtype).eps / 2
                       + (2 * d + 4) * torch.finfo(torch.float64).eps / 2)
        self.recomputed = 0
        self._buffer = None

    def size(self, s: int) -> int:
        """The number of points of set ``s``."""
        return int(self.original[s].shape[0])

    def right(self, t: int, cols):
        """The right factor ``[-2 x, 1, |x|^2]`` of the points ``cols`` of set ``t``."""
        left = self.left[t][cols]
        d = self.dim
        out = left.new_empty(left.shape)
        out[:, :d] = left[:, :d] * -2.0  # exact: a power of two
        out[:, d] = 1.0
        out[:, d + 1] = left[:, d]
        return out

    def block(self, s: int, rows, right):
        """Fast squared distances between ``rows`` (a slice or indices) of set ``s`` and the
        points of a :meth:`right` factor: ``(len(rows), len(right))`` in the working precision.

        The result is written into one buffer, reused by the next call (no fresh pages to fault
        in on every block): it is valid until then."""
        import torch

        left = self.left[s][rows]
        size = left.shape[0] * right.shape[0]
        if self._buffer is None or self._buffer.numel() < size:
            self._buffer = torch.empty(size, dtype=self.dtype, device=self.device)
        out = self._buffer[:size].view(left.shape[0], right.shape[0])
        if self.device.type == "cpu":
            return torch.mm(left, right.T, out=out)
        from .features.precision import full_float32

        with full_float32(self.device.type):
            return torch.mm(left, right.T, out=out)

    def bound(self, s: int, i, t: int, j):
        """The float64 error bounds of the fast squared distances of the pairs ``(i, j)``."""
        return self.factor * (self.sq[s][i] + self.sq[t][j])

    def exact(self, s: int, i, t: int, j):
        """Exact squared distances (float64, from the original coordinates) of the pairs
        ``(i, j)`` (index tensors of equal length), in chunks of bounded memory."""
        import torch

        out = torch.empty(i.shape[0], dtype=torch.float64, device=self.device)
        step = max(1, BLOCK_ENTRIES // max(2 * self.dim, 1))
        for p0 in range(0, i.shape[0], step):
            diff = (self.original[s][i[p0:p0 + step]].to(torch.float64)
                    - self.original[t][j[p0:p0 + step]].to(torch.float64))
            out[p0:p0 + step] = tree_sum(diff * diff)
        self.recomputed += int(i.shape[0])
        return out


# ------------------------------------------------------------------------------------------------
# The k-th neighbour radii
# ------------------------------------------------------------------------------------------------
def _keep_smallest(vals, idx, rows, block, offset: int, keep: int):
    """Merge the ``keep`` smallest entries of each row of ``block`` into the candidates of
    ``rows`` (in no particular order)."""
    import torch

    v, i = torch.topk(block, min(keep, block.shape[1]), dim=1, largest=False, sorted=False)
    merged_v, order = torch.topk(torch.cat([vals[rows], v], 1), keep, dim=1, largest=False, sorted=False)
    vals[rows] = merged_v
    idx[rows] = torch.gather(torch.cat([idx[rows], i + offset], 1), 1, order)


class RadiusBounds:
    """The k-th neighbour squared radii of one set: intervals ``[lower, upper]`` from the fast
    pass, made exact on demand by :meth:`exact`.

    Attributes
    ----------
    lower, upper : torch.Tensor
        float64 ``(n,)``: the exact squared radius lies in ``[lower, upper]``.
    """

    def __init__(self, blocks: DistanceBlocks, s: int, k: int, vals, idx, chunk: int):
        import torch

        self.blocks, self.s, self.k, self.chunk = blocks, s, k, chunk
        n, keep = idx.shape
        self.approx = vals.to(torch.float64)
        self.idx = idx
        self.bound = blocks.bound(s, torch.arange(n, device=blocks.device)[:, None], s, idx)
        self.lower = torch.sort(self.approx - self.bound, dim=1).values[:, k - 1]
        self.upper = torch.sort(self.approx + self.bound, dim=1).values[:, k - 1]
        self.known = torch.zeros(n, dtype=torch.bool, device=blocks.device)
        self.value = torch.full((n,), math.nan, dtype=torch.float64, device=blocks.device)
        if keep < n - 1:
            # A point not kept has a fast value >= the largest kept one: when that value less the
            # largest bound exceeds `upper`, no such point can be among the k nearest.
            largest = blocks.factor * (blocks.sq[s] + blocks.sq[s].max())
            unsure = (self.approx.max(1).values - largest <= self.upper).nonzero()[:, 0]
            if unsure.numel():
                exact = _kth_by_scan(blocks, s, unsure, self.upper[unsure], k, chunk)
                self.value[unsure], self.known[unsure] = exact, True
                self.lower[unsure] = self.upper[unsure] = exact

    def exact(self, points):
        """The exact squared radii of ``points`` (indices), computed once and remembered."""
        import torch

        todo = points[~self.known[points]].unique()
        if todo.numel():
            approx, bound, upper = self.approx[todo], self.bound[todo], self.upper[todo]
            r, c = (approx - bound <= upper[:, None]).nonzero(as_tuple=True)
            exact = torch.full(approx.shape, math.inf, dtype=torch.float64, device=approx.device)
            exact[r, c] = self.blocks.exact(self.s, todo[r], self.s, self.idx[todo[r], c])
            self.value[todo] = torch.sort(exact, dim=1).values[:, self.k - 1]
            self.known[todo] = True
        return self.value[points]


def kth_neighbour_radii(blocks: DistanceBlocks, s: int, k: int, chunk: int) -> RadiusBounds:
    """Bounds on the squared distance from each point of set ``s`` to its ``k``-th nearest
    *other* point (duplicates count), exact on demand.

    One blocked pass over the ``n (n - 1) / 2`` pairs keeps the ``k + max(k, 8)`` smallest fast
    values of each row. Rows for which the kept candidates cannot be shown to contain every
    possible k-th neighbour (many points tied, as in duplicated data) are resolved exactly by a
    second blocked pass over their rows only.
    """
    import torch

    n = blocks.size(s)
    keep = min(n - 1, k + max(EXTRA_CANDIDATES, k))
    vals = torch.full((n, keep), math.inf, dtype=blocks.dtype, device=blocks.device)
    idx = torch.full((n, keep), -1, dtype=torch.long, device=blocks.device)

    def pairs(i0, i1, j0, j1, right):
        """The pairs (rows i0:i1) x (columns j0:j1), for the rows and, off the diagonal, the columns."""
        rows, cols = slice(i0, i1), slice(j0, j1)
        block = blocks.block(s, rows, right)
        if i0 == j0:
            block.fill_diagonal_(math.inf)
        _keep_smallest(vals, idx, rows, block, j0, keep)
        if i0 != j0:
            _keep_smallest(vals, idx, cols, block.T.contiguous(), i0, keep)

    # The blocks above the diagonal once each; a diagonal block by its sub-blocks on and above
    # the diagonal (10/16 of its products instead of all of them).
    sub = max(128, chunk // 4)
    for j0 in range(0, n, chunk):
        j1 = min(n, j0 + chunk)
        right = blocks.right(s, slice(j0, j1))
        for i0 in range(0, j0, chunk):
            pairs(i0, i0 + chunk, j0, j1, right)
        for a0 in range(j0, j1, sub):
            for b0 in range(a0, j1, sub):
                pairs(a0, min(j1, a0 + sub), b0, min(j1, b0 + sub), right[b0 - j0:min(j1, b0 + sub) - j0])
    return RadiusBounds(blocks, s, k, vals, idx, chunk)


def _kth_by_scan(blocks: DistanceBlocks, s: int, rows, upper, k: int, chunk: int):
    """The exact k-th radius of the points ``rows`` of set ``s``, scanning all their pairs: every
    pair whose fast value may lie at or below ``upper`` is recomputed exactly."""
    import torch

    n = blocks.size(s)
    out = torch.empty(rows.shape[0], dtype=torch.float64, device=blocks.device)
    for p0 in range(0, rows.shape[0], chunk):
        part = rows[p0:p0 + chunk]
        best = torch.full((part.shape[0], k), math.inf, dtype=torch.float64, device=blocks.device)
        for j0 in range(0, n, chunk):
            cols = torch.arange(j0, min(n, j0 + chunk), device=blocks.device)
            approx = blocks.block(s, part, blocks.right(s, cols)).to(torch.float64)
            low = approx - blocks.bound(s, part[:, None], s, cols[None, :])
            low[part[:, None] == cols[None, :]] = math.inf  # not its own neighbour
            r, c = (low <= upper[p0:p0 + chunk, None]).nonzero(as_tuple=True)
            if r.numel():
                found = torch.full(low.shape, math.inf, dtype=torch.float64, device=blocks.device)
                found[r, c] = blocks.exact(s, part[r], s, cols[c])
                best = torch.sort(torch.cat([best, found], 1), dim=1).values[:, :k]
        out[p0:p0 + chunk] = best[:, k - 1]
    return out


# ------------------------------------------------------------------------------------------------
# Balls
# ------------------------------------------------------------------------------------------------
def _rounded(values, dtype, up: bool):
    """``values`` (float64) in ``dtype``, rounded towards +infinity (``up``) or -infinity."""
    import torch

    out = values.to(dtype)
    back = out.to(torch.float64)
    wrong = back < values if up else back > values
    towards = torch.full_like(out, math.inf if up else -math.inf)
    return torch.where(wrong, torch.nextafter(out, towards), out)


def _inside(blocks: DistanceBlocks, i, j, approx, radii: RadiusBounds, ball_of_x: bool, closed: bool):
    """Which pairs ``(x_i, y_j)`` of a band lie inside the ball (around ``x_i`` if ``ball_of_x``,
    else around ``y_j``): decided on the exact radius, with the fast value where its own bound
    allows it, else on the exact distance."""
    radius = radii.exact(i if ball_of_x else j)
    bound = blocks.bound(0, i, 1, j)
    if closed:
        surely_in, surely_out = approx + bound <= radius, approx - bound > radius
    else:
        surely_in, surely_out = approx + bound < radius, approx - bound >= radius
    inside = surely_in.clone()
    band = (~surely_in & ~surely_out).nonzero()[:, 0]
    if band.numel():
        exact = blocks.exact(0, i[band], 1, j[band])
        inside[band] = exact <= radius[band] if closed else exact < radius[band]
    return inside


def ball_hits(blocks: DistanceBlocks, radii_x: RadiusBounds, radii_y: RadiusBounds, chunk: int,
              closed: bool):
    """Which points of set 0 (``x``) and set 1 (``y``) lie in which balls, in one blocked pass.

    Parameters
    ----------
    blocks : DistanceBlocks
        The two sets, ``x`` (set 0) and ``y`` (set 1).
    radii_x, radii_y : RadiusBounds
        The squared radii of the balls around the points of ``x`` and of ``y``.
    chunk : int
        Rows per block.
    closed : bool
        Balls include their boundary (``<=``) or not (``<``).

    Returns
    -------
    dict of torch.Tensor
        ``y_in_x_count`` (int64, m): how many balls of ``x`` contain ``y_j``; ``x_ball_hit``
        (bool, n): the ball of ``x_i`` contains some ``y_j``; ``x_in_y_ball`` (bool, n): some
        ball of ``y`` contains ``x_i``.

    Notes
    -----
    A block entry below ``lower - margin`` (``margin``: the largest bound of a pair involving the
    point) is surely inside the ball, one above ``upper + margin`` surely outside; the counts of
    both are matrix-vector products of 0/1 blocks. Rows where the two counts differ hold the
    (rare) entries in between, decided pair by pair by :func:`_inside`.
    """
    import torch

    n, m = blocks.size(0), blocks.size(1)
    device, dtype = blocks.device, blocks.dtype
    count = torch.zeros(m, dtype=torch.float64, device=device)
    x_hit = torch.zeros(n, dtype=torch.bool, device=device)
    x_in = torch.zeros(n, dtype=torch.bool, device=device)
    sq_x, sq_y = blocks.sq
    margin_x = blocks.factor * (sq_x + sq_y.max())
    margin_y = blocks.factor * (sq_y + sq_x.max())
    low_x = _rounded(radii_x.lower - margin_x, dtype, False)
    high_x = _rounded(radii_x.upper + margin_x, dtype, True)
    low_y = _rounded(radii_y.lower - margin_y, dtype, False)
    high_y = _rounded(radii_y.upper + margin_y, dtype, True)
    size = min(chunk, n)
    surely = torch.empty((size, min(chunk, m)), dtype=dtype, device=device)
    maybe = torch.empty_like(surely)
    ones_r = torch.ones(size, dtype=dtype, device=device)
    ones_c = torch.ones(surely.shape[1], dtype=dtype, device=device)
    for j0 in range(0, m, chunk):
        cols = slice(j0, min(m, j0 + chunk))
        right = blocks.right(1, cols)
        for i0 in range(0, n, chunk):
            rows = slice(i0, min(n, i0 + chunk))
            block = blocks.block(0, rows, right)
            r_, c_ = block.shape
            s, b = surely[:r_, :c_], maybe[:r_, :c_]
            # the balls of x: one threshold per row
            torch.lt(block, low_x[rows][:, None], out=s)
            torch.le(block, high_x[rows][:, None], out=b)
            count[cols] += (ones_r[:r_] @ s).to(torch.float64)
            inside_rows = s @ ones_c[:c_]
            x_hit[rows] |= inside_rows > 0
            band_rows = ((b @ ones_c[:c_]) > inside_rows).nonzero()[:, 0]
            if band_rows.numel():
                r, c = (b[band_rows] > s[band_rows]).nonzero(as_tuple=True)
                i, j = band_rows[r] + i0, c + j0
                approx = block[band_rows[r], c].to(torch.float64)
                inside = _inside(blocks, i, j, approx, radii_x, True, closed)
                count.index_add_(0, j[inside], torch.ones_like(j[inside], dtype=torch.float64))
                x_hit[i[inside]] = True
            # the balls of y: one threshold per column; rows inside one already need no more
            torch.lt(block, low_y[cols][None, :], out=s)
            torch.le(block, high_y[cols][None, :], out=b)
            x_in[rows] |= (s @ ones_c[:c_]) > 0
            band_rows = (((b @ ones_c[:c_]) > 0) & ~x_in[rows]).nonzero()[:, 0]
            if band_rows.numel():
                r, c = b[band_rows].nonzero(as_tuple=True)
                i, j = band_rows[r] + i0, c + j0
                approx = block[band_rows[r], c].to(torch.float64)
                inside = _inside(blocks, i, j, approx, radii_y, False, closed)
                x_in[i[inside]] = True
    return {"y_in_x_count": count.round().to(torch.long), "x_ball_hit": x_hit, "x_in_y_ball": x_in}
