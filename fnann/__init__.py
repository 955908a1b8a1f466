"""fnann: the textbook feed-forward neural network in pure JAX.

Layers Z = W A + b and A = sigma(Z), a hand-derived backward pass (the delta recursion)
verified against ``jax.grad`` and finite differences, optimizers as explicit pytree
transforms, and compiled training. See DESIGN.md for the mathematics and conventions.
"""

from fnann.activations import (
    ACTIVATIONS,
    Activation,
    elementwise,
    get_activation,
    identity,
    relu,
    sigmoid,
    softmax,
    tanh,
)
from fnann.backprop import backward, dense_backward, loss_and_grad, objective
from fnann.gradcheck import GradCheckReport, check_grads
from fnann.losses import LOSSES, Loss, binary_cross_entropy, cross_entropy, get_loss, mse
from fnann.mlp import MLP, Dense, Trace, dense_forward, forward, forward_trace, init
from fnann import datasets, optim, plots, schedules
from fnann.optim import (
    AdamState,
    EmptyState,
    MomentumState,
    Optimizer,
    RMSPropState,
    SGDState,
    adam,
    add_decayed_weights,
    apply_updates,
    chain,
    clip_by_global_norm,
    momentum,
    rmsprop,
    sgd,
)
from fnann.predict import accuracy, evaluate, predict
from fnann.train import TrainingDivergedError, TrainState, fit, train_step
from fnann.sweep import FitManyResult, fit_many
from fnann import parallel
from fnann.checkpoint import Checkpoint, load, save

__version__ = "0.1.0"

__all__ = [
    "AdamState",
    "Checkpoint",
    "EmptyState",
    "MomentumState",
    "Optimizer",
    "RMSPropState",
    "SGDState",
    "TrainState",
    "TrainingDivergedError",
    "accuracy",
    "adam",
    "add_decayed_weights",
    "apply_updates",
    "chain",
    "clip_by_global_norm",
    "datasets",
    "plots",
    "evaluate",
    "fit",
    "fit_many",
    "FitManyResult",
    "parallel",
    "load",
    "momentum",
    "optim",
    "predict",
    "rmsprop",
    "save",
    "schedules",
    "sgd",
    "train_step",
    "ACTIVATIONS",
    "Activation",
    "Dense",
    "GradCheckReport",
    "LOSSES",
    "Loss",
    "MLP",
    "Trace",
    "backward",
    "binary_cross_entropy",
    "check_grads",
    "cross_entropy",
    "dense_backward",
    "dense_forward",
    "elementwise",
    "forward",
    "forward_trace",
    "get_activation",
    "get_loss",
    "identity",
    "init",
    "loss_and_grad",
    "mse",
    "objective",
    "relu",
    "sigmoid",
    "softmax",
    "tanh",
]
