"""fnann: the textbook feed-forward neural network in pure JAX.

Layers Z = W A + b and A = sigma(Z), a hand-derived backward pass (the delta recursion)
verified against ``jax.grad`` and finite differences, optimizers as explicit pytree
transforms, and compiled training. The README states the mathematics and conventions.

Layout: the library (``activations``, ``losses``, ``mlp``, ``backprop``, ``gradcheck``,
``optim``, ``train``, ``predict``, ``checkpoint``) never imports the application
(``fnann.app``: the command line, datasets and plots). ``fnann.datasets`` and
``fnann.plots`` are the app's modules.

``import fnann`` is cheap: each public name is imported from its module on first use (PEP
562), so the command line answers ``--help`` or a usage error, and starts its helper
processes, before it pays for importing JAX. ``fnann.<name>`` and ``from fnann import
<name>`` work as with eager imports. ``_EXPORTS`` is the one list of public names (module ->
names); ``__all__`` and the lookup are derived from it.
"""

from __future__ import annotations

import importlib
import importlib.util

_EXPORTS: dict[str, tuple[str, ...]] = {
    "fnann.activations": ("ACTIVATIONS", "Activation", "elementwise", "elu", "gelu", "get_activation", "identity",
                          "leaky_relu", "leaky_relu_with", "relu", "sigmoid", "silu", "softmax", "softplus", "tanh"),
    "fnann.backprop": ("backward", "backward_trace", "dense_backward", "loss_and_grad", "objective"),
    "fnann.gradcheck": ("GradCheckReport", "check_grads"),
    "fnann.losses": ("LOSSES", "Loss", "binary_cross_entropy", "cross_entropy", "get_loss", "hinge", "huber",
                     "huber_with", "mae", "mse"),
    "fnann.mlp": ("MLP", "Dense", "Normed", "Trace", "dense_forward", "forward", "forward_trace", "init", "init_stats"),
    "fnann.norms": ("BatchNorm", "LayerNorm", "RunningStats"),
    "fnann.optim": ("AdamState", "EmptyState", "MomentumState", "Optimizer", "RMSPropState", "SGDState",
                    "adam", "adamw", "add_decayed_weights", "apply_updates", "as_optimizer", "chain",
                    "clip_by_global_norm", "LossScaleState", "loss_scaling", "momentum", "nesterov", "rmsprop", "sgd", "weights_only"),
    "fnann.inference": ("accuracy", "compile_inference", "evaluate", "predict"),
    "fnann.train": ("TrainingDivergedError", "TrainState", "compile_fit", "fit", "train_step"),
    "fnann.caches": ("cache_info", "clear_caches"),
    "fnann.summaries": ("Summary", "summary"),
    "fnann.sweep": ("FitManyResult", "fit_many"),
    "fnann.checkpoint": ("Checkpoint", "load", "save"),
    "fnann.lbfgs": ("LBFGSResult",),  # the function is fnann.lbfgs.lbfgs: the submodule owns the name
}
_MODULES = {"diagnostics": "fnann.diagnostics", "lbfgs": "fnann.lbfgs", "optim": "fnann.optim", "parallel": "fnann.parallel",
            "schedules": "fnann.optim.schedules", "datasets": "fnann.app.datasets",
            "plots": "fnann.app.plots"}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__version__ = "0.1.0"

__all__ = sorted([*_WHERE, *_MODULES])  # derived: each public name is listed once, in _EXPORTS


def __getattr__(name: str):
    """Imports a public name's module (or a submodule) on first use and keeps it here."""
    if name in _MODULES:
        value = importlib.import_module(_MODULES[name])
    elif name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
    elif not name.startswith("__") and importlib.util.find_spec(f"fnann.{name}") is not None:
        value = importlib.import_module(f"fnann.{name}")  # a submodule, e.g. fnann.train
    else:
        raise AttributeError(f"module 'fnann' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
