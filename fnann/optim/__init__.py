"""Optimizers as pure pytree transforms (optax's ``init``/``update`` signature).

``base``: the ``Optimizer`` protocol and the tree helpers; ``optimizers``: sgd, momentum,
RMSProp, Adam and AdamW as the textbook gives them; ``combinators``: chain, clipping, L2 decay;
``decay``: weight-decay masks (``weights_only``); ``loss_scale``: dynamic loss scaling
(float16 mixed precision); ``conventions``: the optimizers exactly as
PyTorch, optax and Keras define them (``torch_adam``, ``optax_rmsprop``, ``keras_sgd``, ...);
``schedules``: learning-rate schedules.
"""

from fnann.optim import base, combinators, conventions, decay, loss_scale, optimizers, schedules
from fnann.optim.base import *  # noqa: F403
from fnann.optim.combinators import *  # noqa: F403
from fnann.optim.decay import *  # noqa: F403
from fnann.optim.loss_scale import *  # noqa: F403
from fnann.optim.optimizers import *  # noqa: F403

# derived: each name is listed once, in its module's __all__
__all__ = [*base.__all__, *decay.__all__, *combinators.__all__, *optimizers.__all__, *loss_scale.__all__, "conventions", "schedules"]
