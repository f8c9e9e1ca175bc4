"""Training critics: the three methods, their defaults, and the building blocks of a WGAN loop.

The critic maximises the Kantorovich-Rubinstein objective ``E_P f - E_Q f`` on batches:

- ``"groupsort"``: a :class:`~otmetrics.critic.GroupSortCritic` (1-Lipschitz by construction),
  Adam with a cosine-annealed learning rate, full batches up to 4096 points per side;
- ``"clipping"``: Algorithm 1 of Arjovsky, Chintala & Bottou (2017): an MLP, RMSProp with learning
  rate 5e-5, every parameter clipped to ``[-0.01, 0.01]`` after each step, batches of 64,
  ``n_critic = 5`` critic steps per generator step in a GAN;
- ``"gp"``: Gulrajani et al. (2017): an MLP, Adam(1e-4, betas (0, 0.9)), and the penalty
  ``lambda E (|grad f(x_hat)| - 1)^2`` with ``lambda = 10`` at random interpolates of real and
  generated points, batches of 64, ``n_critic = 5``.

The parts (:data:`METHODS`, :func:`make_critic`, :func:`make_optimizer`, :func:`critic_loss`,
:func:`gradient_penalty`, :func:`clip_weights_`) are public for a WGAN loop of one's own; the loop
of :func:`~otmetrics.critic.estimate_w1` is built from them in :mod:`otmetrics.critic.loop`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._core.validation import validate_positive
from .networks import GroupSortCritic, MLPCritic

__all__ = ["MethodConfig", "METHODS", "method_config", "make_critic", "make_optimizer", "clip_weights_",
           "gradient_penalty", "critic_loss"]


@dataclass(frozen=True)
class MethodConfig:
    """The defaults of a critic-training method.

    Attributes
    ----------
    name : str
    network : {"groupsort", "mlp"}
    optimizer : {"adam", "rmsprop"}
    lr : float
        Learning rate (inputs are normalised to unit RMS radius, see :mod:`otmetrics.critic.networks`).
    betas : tuple of float
        Adam's betas (unused by RMSProp).
    batch_size : int or None
        Points per side and step; ``None`` means full batches of up to 4096 points per side.
    steps : int
        Critic updates in :func:`~otmetrics.critic.estimate_w1`.
    n_critic : int
        Critic updates per generator update in a GAN loop (not used by ``estimate_w1``).
    clip_value : float or None
        Weight-clipping bound ``c``.
    gp_weight : float or None
        Gradient-penalty weight ``lambda``.
    cosine_schedule : bool
        Anneal the learning rate to 0 along a cosine over the ``steps``.

    Examples
    --------
    >>> from dataclasses import replace
    >>> cfg = METHODS["gp"]
    >>> cfg.optimizer, cfg.lr, cfg.betas, cfg.gp_weight, cfg.n_critic
    ('adam', 0.0001, (0.0, 0.9), 10.0, 5)
    >>> replace(cfg, lr=1e-3).lr   # frozen: derive a variant instead of editing the defaults
    0.001
    """

    name: str
    network: str
    optimizer: str
    lr: float
    betas: tuple[float, float]
    batch_size: int | None
    steps: int
    n_critic: int
    clip_value: float | None = None
    gp_weight: float | None = None
    cosine_schedule: bool = False


#: The methods of :func:`~otmetrics.critic.estimate_w1`, with their defaults.
METHODS: dict[str, MethodConfig] = {
    "groupsort": MethodConfig("groupsort", "groupsort", "adam", lr=1e-2, betas=(0.9, 0.999), batch_size=None,
                              steps=500, n_critic=1, cosine_schedule=True),
    "clipping": MethodConfig("clipping", "mlp", "rmsprop", lr=5e-5, betas=(0.9, 0.999), batch_size=64,
                             steps=2000, n_critic=5, clip_value=0.01),
    "gp": MethodConfig("gp", "mlp", "adam", lr=1e-4, betas=(0.0, 0.9), batch_size=64, steps=2000, n_critic=5,
                       gp_weight=10.0),
}


def method_config(method: str) -> MethodConfig:
    """The defaults of ``method`` (an entry of :data:`METHODS`), or a ``ValueError`` that lists the methods.

    Examples
    --------
    >>> method_config("gp").batch_size
    64
    >>> method_config("sinkhorn")
    Traceback (most recent call last):
    ...
    ValueError: method: must be one of ['clipping', 'gp', 'groupsort'], got 'sinkhorn'
    """
    if method not in METHODS:
        raise ValueError(f"method: must be one of {sorted(METHODS)}, got {method!r}")
    return METHODS[method]


def make_critic(method: str, dim: int, *, width: int = 64, depth: int = 3, group_size: int = 2,
                seed: int | None = None, device=None, dtype=torch.float32) -> torch.nn.Module:
    """A fresh critic network for ``method``: GroupSort for ``"groupsort"``, a ReLU MLP otherwise.

    Parameters
    ----------
    method : {"groupsort", "clipping", "gp"}
    dim : int
        Dimension of the inputs.
    width, depth : int
        Units per hidden layer and number of hidden layers.
    group_size : int
        GroupSort group size (``"groupsort"`` only).
    seed : int, optional
        Seed of the initial weights (the global torch RNG is left untouched); ``None`` uses it.
    device, dtype
        Where the parameters live.

    Returns
    -------
    torch.nn.Module mapping ``(N, dim)`` to ``(N,)``

    Examples
    --------
    >>> import torch
    >>> f = make_critic("gp", 2, width=16, seed=0)
    >>> f(torch.randn(3, 2)).shape
    torch.Size([3])
    """
    cfg = method_config(method)
    dim = int(validate_positive(dim, "dim", integer=True))
    width = int(validate_positive(width, "width", integer=True))
    depth = int(validate_positive(depth, "depth", allow_zero=True, integer=True))
    group_size = int(validate_positive(group_size, "group_size", integer=True))
    if cfg.network == "groupsort" and depth > 0 and width % group_size:
        raise ValueError(f"group_size: must divide width={width}, got {group_size}")

    def build():
        if cfg.network == "groupsort":
            return GroupSortCritic(dim, width=width, depth=depth, group_size=group_size)
        return MLPCritic(dim, width=width, depth=depth)

    if seed is None:
        net = build()
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = build()
    if cfg.clip_value is not None:
        clip_weights_(net, cfg.clip_value)
    return net.to(device=device, dtype=dtype)


def make_optimizer(method: str, parameters, *, lr: float | None = None) -> torch.optim.Optimizer:
    """The optimizer of ``method`` with its defaults (``lr`` overrides the learning rate).

    Parameters
    ----------
    method : {"groupsort", "clipping", "gp"}
    parameters : iterable of tensors or of parameter groups
        What the optimizer updates (``net.parameters()``), as for any ``torch.optim`` optimizer.
    lr : float, optional
        Learning rate ``> 0`` instead of the method's default (:attr:`MethodConfig.lr`).

    Returns
    -------
    torch.optim.Optimizer
        ``RMSprop(lr)`` for ``"clipping"``; ``Adam(lr, betas)`` with the method's betas otherwise
        (``(0, 0.9)`` for ``"gp"``, ``(0.9, 0.999)`` for ``"groupsort"``).

    Notes
    -----
    The WGAN paper chose RMSProp because momentum made its clipped critic unstable; WGAN-GP
    returned to Adam with ``beta1 = 0``. A generator trained against the critic uses the same
    optimizer and learning rate in both papers. No learning-rate schedule is attached
    (:func:`estimate_w1` anneals ``"groupsort"`` along a cosine).

    References
    ----------
    Arjovsky, Chintala & Bottou, "Wasserstein generative adversarial networks", ICML 2017,
    Algorithm 1 and Sec. 3; Gulrajani et al., "Improved training of Wasserstein GANs", NeurIPS
    2017, Algorithm 1.

    Examples
    --------
    >>> net = make_critic("clipping", 2, seed=0)
    >>> type(make_optimizer("clipping", net.parameters())).__name__
    'RMSprop'
    >>> make_optimizer("gp", net.parameters(), lr=1e-3).defaults["betas"]
    (0.0, 0.9)
    """
    cfg = method_config(method)
    lr = cfg.lr if lr is None else float(validate_positive(lr, "lr"))
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=lr)
    return torch.optim.Adam(parameters, lr=lr, betas=cfg.betas)


@torch.no_grad()
def clip_weights_(net: torch.nn.Module, clip_value: float = 0.01) -> None:
    """Clip every parameter of ``net`` to ``[-clip_value, clip_value]`` in place (WGAN, step 7).

    Parameters
    ----------
    net : torch.nn.Module
        The critic; every parameter (weights and biases) is clipped.
    clip_value : float, default 0.01
        The bound ``c > 0``.

    Returns
    -------
    None

    Notes
    -----
    Clipping keeps the weights in a compact set, so the critic is ``K``-Lipschitz for some ``K``
    that depends on ``c`` and the architecture but is neither known nor 1: the objective of a
    clipped critic estimates ``K W1``, not W1 (see :func:`estimate_w1` for certified values). Run
    it after every optimizer step, under ``torch.no_grad`` (it is decorated with it).

    References
    ----------
    Arjovsky, Chintala & Bottou, "Wasserstein generative adversarial networks", ICML 2017,
    Algorithm 1, line 7.

    Examples
    --------
    >>> net = make_critic("gp", 2, seed=0)
    >>> clip_weights_(net, 0.01)
    >>> max(float(p.detach().abs().max()) for p in net.parameters()) <= 0.01
    True
    """
    clip_value = float(validate_positive(clip_value, "clip_value"))
    for p in net.parameters():
        p.clamp_(-clip_value, clip_value)


def gradient_penalty(net: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor, *,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """``E (|grad f(x_hat)|_2 - 1)^2`` at ``x_hat = t real + (1 - t) fake``, ``t ~ U[0, 1]`` per pair.

    Differentiable with respect to the parameters of ``net`` (a double backward pass).

    Parameters
    ----------
    net : the critic
    real, fake : tensors of the same shape ``(N, d)``
    generator : torch.Generator, optional

    Returns
    -------
    0-d tensor

    Notes
    -----
    Reference: Gulrajani, Ahmed, Arjovsky, Dumoulin & Courville, "Improved training of Wasserstein
    GANs", NeurIPS 2017, Algorithm 1.

    Examples
    --------
    >>> import torch
    >>> net = make_critic("gp", 2, seed=0)
    >>> float(gradient_penalty(net, torch.zeros(8, 2), torch.ones(8, 2)).detach()) >= 0
    True
    """
    t = torch.rand(real.shape[0], 1, generator=generator, device=real.device, dtype=real.dtype)
    x_hat = (t * real.detach() + (1 - t) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(net(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.norm(dim=-1) - 1.0) ** 2).mean()


def critic_loss(net: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor, *, gp_weight: float = 0.0,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The critic's loss ``E f(fake) - E f(real) (+ gp_weight * penalty)`` on one batch.

    Parameters
    ----------
    net : torch.nn.Module
        The critic, mapping ``(N, d)`` to ``(N,)``.
    real, fake : tensors, shapes ``(N, d)`` and ``(M, d)``
        A batch of data and a batch of generated points (``fake`` is used as given: detach it
        when training the critic alone).
    gp_weight : float, default 0
        Weight ``lambda >= 0`` of :func:`gradient_penalty`, computed on the first
        ``min(N, M)`` pairs; 0 skips it.
    generator : torch.Generator, optional
        Draws the interpolation weights of the penalty.

    Returns
    -------
    loss : 0-d tensor
        To minimise (differentiable with respect to the parameters of ``net``).
    objective : 0-d tensor
        ``E f(real) - E f(fake)``, the Kantorovich-Rubinstein estimate on the batch (detached).
    penalty : 0-d tensor
        The gradient penalty (detached), 0 without ``gp_weight``.

    Notes
    -----
    Both batches go through the network in one pass (one forward, one backward). Minimising
    ``loss`` maximises the dual objective ``E_P f - E_Q f`` of Kantorovich-Rubinstein duality;
    its value is W1 only for a 1-Lipschitz critic at the optimum.

    References
    ----------
    Arjovsky, Chintala & Bottou, "Wasserstein generative adversarial networks", ICML 2017, Eq. (3)
    and Algorithm 1; Gulrajani et al., "Improved training of Wasserstein GANs", NeurIPS 2017,
    Eq. (3).

    Examples
    --------
    >>> import torch
    >>> net = make_critic("groupsort", 2, seed=0)
    >>> loss, objective, _ = critic_loss(net, torch.zeros(4, 2), torch.ones(4, 2))
    >>> bool(torch.isclose(loss, -objective))
    True
    """
    gp_weight = float(validate_positive(gp_weight, "gp_weight", allow_zero=True))
    out = net(torch.cat([real, fake]))
    objective = out[: real.shape[0]].mean() - out[real.shape[0]:].mean()
    loss = -objective
    penalty = torch.zeros((), device=out.device, dtype=out.dtype)
    if gp_weight:
        k = min(real.shape[0], fake.shape[0])
        penalty = gradient_penalty(net, real[:k], fake[:k], generator=generator)
        loss = loss + gp_weight * penalty
    return loss, objective.detach(), penalty.detach()

