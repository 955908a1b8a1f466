"""The options of ``fnann train``, declared once, and the argparse types of every command.

Each field of :class:`TrainOptions` is one ``--flag``: its default, help text, argparse type
and group, and what ``--resume`` may do with it: ``free`` (change it), ``noted`` (change it,
with a note of what that means) or ``fixed`` (the run's own; another value is refused). From
that one declaration come the ``train`` parser (every option at None there, so that
``--resume`` tells the options given from the ones left out), the comparison with the
record of a resumed run (`train_options`) and that record, ``meta["run"]`` (`run_record`).

The library's activations, losses and optimizers are named through `Registry`, read on
first use: the registries import JAX, which building the parser must not.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib
import inspect
import math
import os
from collections.abc import Callable, Mapping
from typing import Any

from fnann.app.common import UsageError, is_file
from fnann.limits import MAX_SEED

SCHEDULES = ("constant", "cosine", "exponential", "warmup", "warmup_cosine")
SCHEDULE_OPTIONS = {"constant": (), "cosine": (), "exponential": ("decay_rate",),
                    "warmup": ("warmup_epochs",), "warmup_cosine": ("warmup_epochs",)}
OVER_THE_RUN = ("cosine", "exponential", "warmup_cosine")
"""The schedules whose shape the run's length fixes: they end with the run (a resume may not go past it)."""
TASKS = ("auto", "classification", "regression")
DTYPES = ("float32", "float64")


class Registry(Mapping):
    """A library registry (name -> object), read on first use; as argparse ``choices``, its names.

    ``first``: names listed before the others (the default optimizer, as the help always had it).
    """

    def __init__(self, load: Callable[[], Mapping], first: tuple[str, ...] = ()):
        self._load, self._first = load, first

    @functools.cached_property
    def _items(self) -> dict:
        items = dict(self._load())
        return {k: items[k] for k in (*(k for k in self._first if k in items), *items)}

    def __getitem__(self, name):
        if name in self._items:
            return self._items[name]
        return self._load()[name]  # a family's member (leaky_relu(0.2)), not listed among the names

    def __iter__(self):
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({', '.join(self)})"


ACTIVATIONS = Registry(lambda: importlib.import_module("fnann.activations").ACTIVATIONS)
LOSSES = Registry(lambda: importlib.import_module("fnann.losses").LOSSES)
OPTIMIZERS = Registry(lambda: importlib.import_module("fnann.optim").OPTIMIZERS, first=("adam",))


def optimizer_factory(name: str):
    """The library's factory of the optimizer ``name``, or a UsageError naming the known ones."""
    if name not in OPTIMIZERS:
        raise UsageError(f"--optimizer: unknown optimizer {name!r}; known names are {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name]


def hyperparameters(factory) -> tuple[str, ...]:
    """The options of ``fnann train`` an optimizer factory takes: its arguments after ``lr``."""
    names = list(inspect.signature(factory).parameters)
    return tuple(n for n in names[names.index("lr") + 1:] if n in TRAIN_DEFAULTS)


OPTIMIZER_OPTIONS = Registry(lambda: {name: hyperparameters(f) for name, f in OPTIMIZERS.items()})

_HELP_NAMES = {
    "{activations}": lambda: ", ".join(ACTIVATIONS),
    "{losses}": lambda: ", ".join(LOSSES),
    "{default_lrs}": lambda: ", ".join(f"{k} {f.default_lr:g}" for k, f in OPTIMIZERS.items()),
}


class Help(argparse.HelpFormatter):
    """Fills ``{activations}``, ``{losses}`` and ``{default_lrs}`` in help texts when the help is
    shown, and leaves a `Registry`'s names unread when argparse checks an option being added."""

    def _get_help_string(self, action) -> str:
        text = super()._get_help_string(action)
        for key, names in _HELP_NAMES.items():
            if key in text:
                text = text.replace(key, names())
        if "{takers}" in text:  # the optimizers whose factory takes this option
            text = text.replace("{takers}", " or ".join(n for n, keys in OPTIMIZER_OPTIONS.items()
                                                         if action.dest in keys))
        return text

    def _format_args(self, action, default_metavar):
        if default_metavar is None and isinstance(action.choices, Registry):
            return action.dest  # add_argument checking the metavar: the names can wait for the help
        return super()._format_args(action, default_metavar)


# --- argparse types -------------------------------------------------------------------


def flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def shown(value) -> str:
    """An option's value as one would type it: 128,64 for widths, 0.001 for floats."""
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def parse_sizes(text: str) -> list[int]:
    try:
        widths = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"malformed sizes {text!r}: give widths like 128,64") from None
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"malformed sizes {text!r}: widths must be integers >= 1")
    return widths


def parse_batch_size(text: str):
    if text.lower() in ("full", "none", "n"):
        return "full"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"batch size must be an integer >= 1 or 'full'; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"batch size must be an integer >= 1 or 'full'; got {value}")
    return value


def number(kind, low=None, high=None, *, low_open=False, high_open=False):
    """An argparse type: ``kind(text)`` inside the given bounds (open or closed)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}; "
                                             f"got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number; got {text!r}")
        if low is not None and (value <= low if low_open else value < low):
            raise argparse.ArgumentTypeError(f"must be {'>' if low_open else '>='} {shown(low)}; got {text}")
        if high is not None and (value >= high if high_open else value > high):
            raise argparse.ArgumentTypeError(f"must be {'<' if high_open else '<='} {shown(high)}; got {text}")
        return value
    return parse


positive = number(float, 0, low_open=True)
fraction = number(float, 0, 1, low_open=True, high_open=True)
count = number(int, 0)
parse_seed = number(int, 0, MAX_SEED)  # --seed of train, gradcheck and explain
decay = number(float, 0, 1, high_open=True)


NORMS = ("layer", "batch", "none")


def parse_norm(text: str) -> str:
    """``--norm``: ``layer``, ``batch`` or ``none``, or one per hidden layer (``batch,none``)."""
    names = [s.strip() for s in text.split(",")]
    bad = [n for n in names if n not in NORMS]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown normalization {bad[0]!r}: choose {', '.join(NORMS)}, or one "
                                         "per hidden layer, comma-separated (batch,none)")
    return ",".join(names)


def norm_names(text: str) -> str | tuple[str, ...]:
    """``--norm``'s value as ``MLP(norm=...)`` takes it: one name, or one per hidden layer
    (``"batch,none"`` -> ``("batch", "none")``; ``"none"``: no normalization)."""
    return tuple(text.split(",")) if "," in text else text


def hidden_activations(text: str) -> str | tuple[str, ...]:
    """``--hidden``'s value as ``MLP(hidden=...)`` takes it: one name, or one per hidden layer
    (``"relu,tanh"`` -> ``("relu", "tanh")``)."""
    return tuple(text.split(",")) if "," in text else text


def parse_delimiter(text: str) -> str:
    named = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "space": " ", "pipe": "|"}
    value = named.get(text.lower(), text)
    if len(value) != 1 or value in "\"\r\n":
        raise argparse.ArgumentTypeError(f"must be one character (or tab, comma, semicolon, space, "
                                         f"pipe); got {text!r}")
    return value


# --- the options of a training run ---------------------------------------------------------


def _option(group: str, default, help: str, *, resume: str = "fixed", note: str | None = None,
            recorded: bool = True, names: Callable[[str], Any] | None = None, **argparse_kwargs):
    """A field of `TrainOptions`: ``{default}`` in ``help`` reads as the default, typed.
    ``names``: for an option that takes several names (``--hidden relu,tanh``), its splitter."""
    assert resume in ("free", "noted", "fixed") and (note is not None) == (resume == "noted")
    metadata = {"group": group, "help": help.replace("{default}", shown(default)), "resume": resume,
                "note": note, "recorded": recorded, "names": names, "argparse": argparse_kwargs}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


_data, _network, _optimizer, _training = (functools.partial(_option, g)
                                          for g in ("data", "network", "optimizer", "training"))


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    """The options of ``fnann train``: one field per ``--flag``, with its default."""

    data: str = _data("digits", "bundled dataset (digits, iris, breast_cancer, wine, diabetes), synthetic "
                      "one (xor, spirals, sine) or a .csv/.npz file (default {default})")
    label: str | None = _data(None, "label column of a CSV file: index or header name (default: the last)")
    task: str = _data("auto", "classification or regression; auto (the default) infers it: text labels or "
                      "at most 50 distinct integers mean classification", choices=TASKS)
    delimiter: str | None = _data(None, "column separator of a text file: one character, or tab, comma, "
                                  "semicolon, space, pipe (default: detected)", type=parse_delimiter)
    test_size: float = _data(0.2, "fraction held out for testing (default {default})", type=fraction)
    val_size: float = _data(0.1, "fraction of the training split held out for validation (default "
                            "{default})", type=fraction)
    seed: int = _data(0, "seed of the split, the init and the shuffles (default {default})", type=parse_seed)
    hidden_sizes: list[int] = _network([128, 64], "hidden layer widths (default 128,64: the 64-128-64-10 "
                                       "network on digits)", type=parse_sizes)
    hidden: str = _network("relu", "hidden activation: {activations}, or one per hidden layer, comma-separated "
                           "(relu,tanh) (default {default})", metavar="NAME[,NAME...]",
                           names=hidden_activations)
    residual: bool = _network(False, "skip connections A^(l) = A^(l-1) + σ(Z^(l)) on every hidden layer as wide "
                              "as its input (layer 2 on, e.g. --hidden-sizes 100,100)", action="store_const",
                              const=True)
    dropout: float = _network(0.0, "inverted dropout rate p in [0, 1) of every hidden layer in training: "
                              "A^(l) = σ(Z^(l)) ⊙ M / (1 - p), M ~ Bernoulli(1 - p) (default {default}: off)",
                              type=decay, metavar="P")
    norm: str = _network("none", "normalization of the hidden layers' pre-activations before σ: layer, batch "
                         "(running statistics at evaluation) or none, or one per hidden layer, comma-separated "
                         "(batch,none): Ẑ = (Z - μ) / √(σ² + ε), A = σ(γ ⊙ Ẑ + β) (default {default})",
                         type=parse_norm, metavar="NAME[,NAME...]", names=norm_names)
    output: str | None = _network(None, "output activation: {activations} (default: softmax for "
                                  "classification, sigmoid with --loss binary_cross_entropy, identity for "
                                  "regression)", metavar="NAME")
    loss: str | None = _network(None, "loss: {losses} (default: cross_entropy for a softmax classifier, "
                                "binary_cross_entropy for a sigmoid one, mse otherwise); classification "
                                "targets are built from the labels (one-hot, or 0/1 for one output)",
                                metavar="NAME")
    dtype: str = _network("float32", "parameter and data dtype (default {default})", choices=DTYPES)
    compute_dtype: str | None = _network(None, "mixed precision: the steps compute in this dtype (bfloat16, or "
                                         "float16 with dynamic loss scaling), the params and optimizer state "
                                         "stay --dtype, the loss is float32 (default: --dtype throughout)",
                                         choices=("bfloat16", "float16"), resume="noted",
                                         note="the params and optimizer state are kept; only the steps' "
                                         "arithmetic changes")
    optimizer: str = _optimizer("adam", "(default {default})", choices=OPTIMIZERS)
    lr: float | None = _optimizer(None, "learning rate (default: {default_lrs})", type=positive,
                                  resume="noted", note="the optimizer state (moments, step count) is kept "
                                  "and the new rate applies from the next step")
    gamma: float = _optimizer(0.9, "momentum coefficient ({takers} only; default {default})", type=decay)
    beta: float = _optimizer(0.9, "RMSProp decay ({takers} only; default {default})", type=decay)
    b1: float = _optimizer(0.9, "Adam first-moment decay ({takers} only; default {default})", type=decay)
    b2: float = _optimizer(0.999, "Adam second-moment decay ({takers} only; default {default})", type=decay)
    eps: float = _optimizer(1e-8, "RMSProp/Adam epsilon (default {default})", type=positive)
    clip: float | None = _optimizer(None, "clip gradients to this global norm (default: off)", type=positive)
    weight_decay: float = _optimizer(1e-3, "weight decay lambda (default {default}; 0: off). Coupled L2 by "
                                     "default: lambda*theta is added to the gradient before the optimizer, "
                                     "biases included", type=number(float, 0))
    decoupled: bool = _optimizer(False, "decoupled weight decay instead: AdamW, theta -= lr*lambda*theta "
                                 "beside Adam's step, weights only (not biases); needs --optimizer adam",
                                 action="store_const", const=True)
    schedule: str = _optimizer("constant", "learning-rate schedule over the run's steps: cosine decay to 0, "
                               "exponential decay to lr*--decay-rate, linear warmup over --warmup-epochs, or "
                               "warmup then cosine (default {default})", choices=SCHEDULES)
    warmup_epochs: int = _optimizer(5, "epochs of linear warmup (default {default})", type=count)
    decay_rate: float = _optimizer(0.1, "exponential schedule: lr at the end of the run / lr (default "
                                   "{default})", type=number(float, 0, 1, low_open=True))
    epochs: int = _training(60, "epochs to run (with --resume: to add; left out, --resume continues to the run's "
                            "planned end) (default {default})", type=count,
                            resume="free", recorded=False)
    batch_size: int | str = _training(32, "1 (SGD), an integer (mini-batches) or 'full' (default {default})",
                                      type=parse_batch_size)
    patience: int | None = _training(None, "stop after this many epochs without a better validation loss "
                                     "and keep the best epoch's params (default: off)", type=count,
                                     resume="free")
    save_every: int = _training(10, "save a resumable checkpoint every N epochs (atomically; --resume after a "
                                "kill continues from the last one bit for bit; 0: only at the end) (default "
                                "{default})", type=count, resume="free", recorded=False)
    method: str = _training("manual", "gradients by the hand-derived backward pass or by jax.grad (default "
                            "{default})", choices=("manual", "autodiff"), resume="noted",
                            note="the two methods give the same gradients up to rounding")


FIELDS = dataclasses.fields(TrainOptions)
TRAIN_DEFAULTS = {f.name: getattr(TrainOptions(), f.name) for f in FIELDS}
RESUME_FREE = tuple(f.name for f in FIELDS if f.metadata["resume"] == "free")
RESUME_NOTED = {f.name: f.metadata["note"] for f in FIELDS if f.metadata["resume"] == "noted"}
_RULE = {f.name: f.metadata["resume"] for f in FIELDS}


def add_train_options(parser) -> None:
    """One ``--flag`` per field of `TrainOptions`, in its group, every one defaulting to None."""
    groups = {}
    for f in FIELDS:
        group = f.metadata["group"]
        if group not in groups:
            groups[group] = parser.add_argument_group(group)
        groups[group].add_argument(flag(f.name), help=f.metadata["help"], default=None, **f.metadata["argparse"])


def given_options(options) -> dict[str, Any]:
    """The options given: a `TrainOptions`' fields other than their defaults, a parsed
    namespace's (or a mapping's) values other than None."""
    if isinstance(options, TrainOptions):
        return {k: v for k, v in vars(options).items() if v != TRAIN_DEFAULTS[k]}
    values = {k: v for k, v in vars(options).items() if k in TRAIN_DEFAULTS} \
        if isinstance(options, argparse.Namespace) else dict(options)
    TrainOptions(**values)  # an unknown name is a TypeError
    return {k: v for k, v in values.items() if v is not None}


def _same(key: str, a, b) -> bool:
    if key == "hidden_sizes":
        return list(a) == list(b)
    if key == "data" and is_file(a) and is_file(b):
        return os.path.abspath(a) == os.path.abspath(b)
    return a == b or (key == "task" and a == "auto")


def train_options(options, recorded: dict | None) -> tuple[TrainOptions, list[str]]:
    """The run's options: those given (see `given_options`) over the record of a resumed run,
    over the defaults.

    Returns ``(options, notes)``. Raises UsageError for an option that does not apply (``--gamma``
    with Adam), or, with ``--resume``, for options that differ from the recorded run.
    """
    given = given_options(options)
    notes = []
    if recorded is not None:
        changed = []
        for key, value in given.items():
            if _RULE[key] == "free" or key not in recorded or _same(key, value, recorded[key]):
                continue
            if _RULE[key] == "noted":
                notes.append(f"note: {flag(key)} {shown(value)} replaces the recorded {shown(recorded[key])}: "
                             f"{RESUME_NOTED[key]}")
                continue
            changed.append(f"{flag(key)} {shown(value)} (recorded: {shown(recorded[key])})")
        if changed:
            raise UsageError("--resume continues the recorded run, but these options differ from it: "
                             + "; ".join(changed) + ". Leave them out, or start a new run (--overwrite or "
                             "another --out)")
    kept = {f.name: recorded[f.name] for f in FIELDS if f.metadata["recorded"] and f.name in (recorded or {})}
    opts = TrainOptions(**{**kept, **given})
    for key in given:
        for name, table in (("optimizer", OPTIMIZER_OPTIONS), ("schedule", SCHEDULE_OPTIONS)):
            owners = [o for o, keys in table.items() if key in keys]
            if owners and getattr(opts, name) not in owners:
                raise UsageError(f"{flag(key)} applies to --{name} {' or '.join(owners)}, not to "
                                 f"--{name} {getattr(opts, name)}")
    return opts, notes


def run_record(opts: TrainOptions, **extra) -> dict:
    """``meta["run"]`` of a checkpoint: every recorded option, less the hyperparameters of the
    optimizers and schedules the run does not use, and ``extra``."""
    unused = {k for keys in (*OPTIMIZER_OPTIONS.values(), *SCHEDULE_OPTIONS.values()) for k in keys}
    unused -= {*OPTIMIZER_OPTIONS[opts.optimizer], *SCHEDULE_OPTIONS[opts.schedule]}
    record = {f.name: getattr(opts, f.name) for f in FIELDS if f.metadata["recorded"] and f.name not in unused}
    return {**record, **extra}
