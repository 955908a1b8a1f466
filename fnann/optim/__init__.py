"""Optimizers as pure pytree transforms (optax's ``init``/``update`` signature).

``base``: the ``Optimizer`` protocol and the tree helpers; ``optimizers``: sgd, momentum,
RMSProp and Adam as the textbook gives them; ``combinators``: chain, clipping, L2 decay;
``schedules``: learning-rate schedules.
"""

from fnann.optim import schedules
from fnann.optim.base import (
    EmptyState,
    Optimizer,
    apply_updates,
    as_optimizer,
    global_norm,
    moment_dtype,
    tree_ema,
    tree_map_checked,
    tree_moments_like,
    tree_zeros_like,
)
from fnann.optim.combinators import add_decayed_weights, chain, clip_by_global_norm
from fnann.optim.optimizers import (
    AdamState,
    MomentumState,
    RMSPropState,
    SGDState,
    adam,
    momentum,
    rmsprop,
    sgd,
)

__all__ = [
    "Optimizer",
    "EmptyState",
    "SGDState",
    "MomentumState",
    "RMSPropState",
    "AdamState",
    "sgd",
    "momentum",
    "rmsprop",
    "adam",
    "chain",
    "clip_by_global_norm",
    "add_decayed_weights",
    "apply_updates",
    "as_optimizer",
    "global_norm",
    "moment_dtype",
    "schedules",
    "tree_zeros_like",
    "tree_moments_like",
    "tree_ema",
    "tree_map_checked",
]
