"""Optimizers as pure pytree transforms (optax's ``init``/``update`` signature).

``base``: the ``Optimizer`` protocol and the tree helpers; ``optimizers``: sgd, momentum,
RMSProp, Adam and AdamW as the textbook gives them; ``combinators``: chain, clipping, L2 decay;
``decay``: weight-decay masks (``weights_only``); ``conventions``: the optimizers exactly as
PyTorch, optax and Keras define them (``torch_adam``, ``optax_rmsprop``, ``keras_sgd``, ...);
``schedules``: learning-rate schedules.
"""

from fnann.optim import conventions, schedules
from fnann.optim.base import (
    OPTIMIZERS,
    EmptyState,
    Optimizer,
    apply_updates,
    as_optimizer,
    equations,
    global_norm,
    moment_dtype,
    tree_ema,
    tree_map_checked,
    tree_moments_like,
    tree_zeros_like,
)
from fnann.optim.decay import resolve_mask, weights_only
from fnann.optim.combinators import add_decayed_weights, chain, clip_by_global_norm
from fnann.optim.optimizers import (
    AdamState,
    MomentumState,
    RMSPropState,
    SGDState,
    adam,
    adamw,
    momentum,
    rmsprop,
    sgd,
)

__all__ = [
    "OPTIMIZERS",
    "equations",
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
    "adamw",
    "weights_only",
    "resolve_mask",
    "conventions",
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
