"""What the vision transformers of the DINOv2 and CLIP extractors share: fused self-attention, and
the random initialisation of a network built without weights.

Both networks keep the query, key and value projections of a block in one matrix
``(3 D, D)`` (DINOv2's ``attn.qkv``, CLIP's ``attn.in_proj_weight``, rows in that order), split the
result into heads of width ``D / heads`` and scale the scores by ``1 / sqrt(D / heads)``:
:func:`self_attention` is that computation, on ``torch.nn.functional.scaled_dot_product_attention``
(the fused kernels of the device; the plain formula ``softmax(q k^T / sqrt(d)) v`` on any other).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["self_attention", "init_transformer_"]


def self_attention(x: torch.Tensor, in_weight: torch.Tensor, in_bias: torch.Tensor | None,
                   out_weight: torch.Tensor, out_bias: torch.Tensor | None, num_heads: int) -> torch.Tensor:
    r"""Multi-head self-attention with fused input projections.

    .. math::
        [q; k; v] = x W_{in}^T + b_{in}, \quad
        h_j = \mathrm{softmax}\!\left(q_j k_j^T / \sqrt{D / H}\right) v_j, \quad
        \mathrm{out} = [h_1, \dots, h_H] W_{out}^T + b_{out}

    Parameters
    ----------
    x : torch.Tensor, shape (N, T, D)
        Tokens, batch first.
    in_weight, in_bias : torch.Tensor, shapes (3 D, D) and (3 D,)
        The query, key and value projections, stacked in that order.
    out_weight, out_bias : torch.Tensor, shapes (D, D) and (D,)
        The output projection.
    num_heads : int
        ``H``; ``D`` must be a multiple of it.

    Returns
    -------
    torch.Tensor, shape (N, T, D)

    Notes
    -----
    Cost O(N T D^2 + N T^2 D); memory O(N H T^2) on devices without a fused kernel.

    Examples
    --------
    >>> import torch
    >>> x = torch.randn(2, 5, 8)
    >>> mha = torch.nn.MultiheadAttention(8, 2, batch_first=True)
    >>> ours = self_attention(x, mha.in_proj_weight, mha.in_proj_bias, mha.out_proj.weight,
    ...                       mha.out_proj.bias, 2)
    >>> torch.allclose(ours, mha(x, x, x, need_weights=False)[0], atol=1e-6)
    True
    """
    n, t, d = x.shape
    qkv = F.linear(x, in_weight, in_bias).reshape(n, t, 3, num_heads, d // num_heads)
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
    heads = F.scaled_dot_product_attention(q, k, v)
    return F.linear(heads.transpose(1, 2).reshape(n, t, d), out_weight, out_bias)


def init_transformer_(module: nn.Module, std: float = 0.02) -> nn.Module:
    """Random weights for a network built without a file (``pretrained=False``), in place.

    Linear and convolution weights and every other parameter of two or more dimensions (embeddings,
    tokens) are normal with standard deviation ``std``, biases zero, layer norms the identity
    (weight one, bias zero), one-dimensional scales (LayerScale) one. Seeded by
    ``torch.manual_seed``. Good for shapes, tests and training from scratch; the features of a
    random network mean nothing.

    Examples
    --------
    >>> import torch
    >>> net = init_transformer_(torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4)))
    >>> float(net[0].bias.detach().abs().max()), float(net[1].weight.detach().min())
    (0.0, 1.0)
    """
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if parameter.ndim >= 2:
                parameter.normal_(0.0, std)
            elif leaf in ("bias", "in_proj_bias"):
                parameter.zero_()
            elif leaf in ("weight", "gamma"):  # layer norm weights, layer scales
                parameter.fill_(1.0)
            else:  # a class embedding
                parameter.normal_(0.0, std)
    return module
