"""The WGAN critic: neural Kantorovich-Rubinstein estimates of W1 that come with proofs.

.. math::

    W_1(P, Q) = \\sup_{\\mathrm{Lip}(f) \\le 1} \\mathbb E_P f - \\mathbb E_Q f

:func:`estimate_w1` trains a critic ``f`` on two sample sets (a 1-Lipschitz GroupSort network by
default; the weight-clipping and gradient-penalty critics of the WGAN papers for comparison) and
returns a :class:`CriticEstimate`: the dual objective, a proven Lipschitz bound of the network
(exact spectral norms), and a lower bound on the exact W1 of the samples that holds with certainty
(the c-transform of the critic on the samples, with every rounding error accounted for).
:func:`validate` puts an estimate beside the exact EMD.

The building blocks of a WGAN training loop are public too: :func:`make_critic`,
:func:`make_optimizer`, :func:`critic_loss`, :func:`gradient_penalty`, :func:`clip_weights_` and the
method defaults :data:`METHODS` (see ``examples/wgan_mixture.py``); :func:`torch_threads` sets
torch's CPU thread count for a block and restores it.

One concept per module, imports flowing down the list:

- ``networks``: the GroupSort and MLP critics; ``threads``: :func:`torch_threads`;
- ``samples``: the two weighted sample sets, validated, and their float64 tensors;
- ``lipschitz``: what is proven about a network (spectral norms, :class:`FrozenCritic`);
- ``dual``: certified lower bounds on W1 from any potential, by c-transforms;
- ``training``: the methods and the building blocks of a WGAN loop; ``loop``: the training loop;
- ``estimate``: :func:`estimate_w1` (validate, train, freeze, certify);
- ``validation``: :func:`validate`, beside the exact EMD of ``otmetrics.transport``.

``import otmetrics.critic`` imports torch.
"""

from .dual import DualBound, dual_lower_bound
from .estimate import CriticEstimate, estimate_w1
from .lipschitz import FrozenCritic, lipschitz_bound, spectral_norm_bound
from .loop import CriticHistory
from .networks import GroupSortCritic, MLPCritic, bjorck_orthonormalize, group_sort
from .threads import torch_threads
from .training import (
    METHODS,
    MethodConfig,
    clip_weights_,
    critic_loss,
    gradient_penalty,
    make_critic,
    make_optimizer,
)
from .validation import CriticValidation, validate

__all__ = [
    "estimate_w1",
    "validate",
    "CriticEstimate",
    "CriticValidation",
    "CriticHistory",
    "FrozenCritic",
    "DualBound",
    "dual_lower_bound",
    "spectral_norm_bound",
    "lipschitz_bound",
    "GroupSortCritic",
    "MLPCritic",
    "group_sort",
    "bjorck_orthonormalize",
    "METHODS",
    "MethodConfig",
    "make_critic",
    "make_optimizer",
    "critic_loss",
    "gradient_penalty",
    "clip_weights_",
    "torch_threads",
]
