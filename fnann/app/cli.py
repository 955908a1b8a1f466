"""The ``fnann`` command line.

    fnann train       train and verify a network on a bundled dataset or your own file
    fnann predict     predictions of a saved network for new inputs
    fnann evaluate    loss and accuracy (or RMSE and R²) of a saved network on a dataset
    fnann gradcheck   verify the hand-derived gradients of a network
    fnann explain     every equation of backprop with its numbers, for a tiny network

Bad options and bad data end with one line ``fnann <command>: error: ...`` and exit
status 2; a failed gradient check exits with 1.

A checkpoint written by ``fnann train`` records, in its ``meta``, every option of the run
(``meta["run"]``), the class list and the standardization statistics, so that ``predict``
and ``evaluate`` read new data exactly as training did and ``train --resume`` continues
the very same run (it refuses options that would change it).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import math
import os
import sys
import time
from pathlib import Path

OPTIMIZERS = ("adam", "sgd", "momentum", "rmsprop")
DEFAULT_LR = {"adam": 1e-3, "sgd": 0.1, "momentum": 0.01, "rmsprop": 1e-3}
ACTIVATION_NAMES = ("relu", "tanh", "sigmoid", "softmax", "identity")  # == fnann.ACTIVATIONS
LOSS_NAMES = ("cross_entropy", "binary_cross_entropy", "mse")          # == fnann.LOSSES
SCHEDULES = ("constant", "cosine", "exponential", "warmup", "warmup_cosine")
TASKS = ("auto", "classification", "regression")
DTYPES = ("float32", "float64")
DEFAULT_OUT = "runs/fnann"

# The options of a training run, with their defaults. The parser leaves every one of them
# at None, so that `--resume` can tell the options given on its command line (compared with
# the checkpoint's record) from the ones left out (taken from the record).
TRAIN_DEFAULTS = {
    "data": "digits", "label": None, "task": "auto", "delimiter": None, "test_size": 0.2,
    "val_size": 0.1, "seed": 0, "hidden_sizes": [128, 64], "hidden": "relu", "output": None,
    "loss": None, "optimizer": "adam", "lr": None, "gamma": 0.9, "beta": 0.9, "b1": 0.9,
    "b2": 0.999, "eps": 1e-8, "clip": None, "weight_decay": 1e-3, "decoupled": False, "batch_size": 32,
    "schedule": "constant", "warmup_epochs": 5, "decay_rate": 0.1, "dtype": "float32",
    "method": "manual", "patience": None, "epochs": 60,
}
OPTIMIZER_OPTIONS = {"adam": ("b1", "b2", "eps"), "sgd": (), "momentum": ("gamma",),
                     "rmsprop": ("beta", "eps")}
SCHEDULE_OPTIONS = {"constant": (), "cosine": (), "exponential": ("decay_rate",),
                    "warmup": ("warmup_epochs",), "warmup_cosine": ("warmup_epochs",)}
# What --resume may change: the number of epochs to add and early stopping freely; the
# learning rate and the gradient method with a note. Everything else changes the run.
RESUME_FREE = ("epochs", "patience")
RESUME_NOTED = {
    "lr": "the optimizer state (moments, step count) is kept and the new rate applies from the next step",
    "method": "the two methods give the same gradients up to rounding",
}


class UsageError(Exception):
    """A bad option or input, reported as one line with exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error on one line (exit status 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _Version(argparse.Action):
    """``--version``: fnann's version, and jax's, read from the installed metadata."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib import metadata

        from fnann import __version__

        try:
            jax_version = metadata.version("jax")
        except metadata.PackageNotFoundError:  # pragma: no cover
            jax_version = "not installed"
        print(f"fnann {__version__} (jax {jax_version}, Python {sys.version.split()[0]})")
        parser.exit(0)


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"malformed sizes {text!r}: give widths like 128,64") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"malformed sizes {text!r}: widths must be integers >= 1")
    return sizes


def _batch_size(text: str):
    if text.lower() in ("full", "none", "n"):
        return "full"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"batch size must be an integer >= 1 or 'full'; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"batch size must be an integer >= 1 or 'full'; got {value}")
    return value


def _number(kind, low=None, high=None, *, low_open=False, high_open=False):
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
            raise argparse.ArgumentTypeError(f"must be {'>' if low_open else '>='} {low:g}; got {text}")
        if high is not None and (value >= high if high_open else value > high):
            raise argparse.ArgumentTypeError(f"must be {'<' if high_open else '<='} {high:g}; got {text}")
        return value
    return parse


_positive = _number(float, 0, low_open=True)
_fraction = _number(float, 0, 1, low_open=True, high_open=True)
_count = _number(int, 0)


def _delimiter(text: str) -> str:
    named = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "space": " ", "pipe": "|"}
    value = named.get(text.lower(), text)
    if len(value) != 1 or value in "\"\r\n":
        raise argparse.ArgumentTypeError(f"must be one character (or tab, comma, semicolon, space, "
                                         f"pipe); got {text!r}")
    return value


# --- the compilation cache --------------------------------------------------------------


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(os.environ.get("FNANN_CACHE_DIR") or os.path.join(base, "fnann", "jax"))


def enable_compilation_cache(args) -> None:
    """Turns on JAX's persistent compilation cache, so a second run skips compiling."""
    if args.no_cache:
        return
    import jax

    folder = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"fnann: compilation cache off ({folder}: {e.strerror})", file=sys.stderr)
        return
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def _add_common(p) -> None:
    p.add_argument("--cache-dir", help=f"JAX compilation cache folder (default {default_cache_dir()}, "
                   "or $FNANN_CACHE_DIR)")
    p.add_argument("--no-cache", action="store_true", help="do not use the compilation cache")


def _x64(on: bool):
    """float64 for the duration of a command (``jax.enable_x64``), never globally."""
    if not on:
        return contextlib.nullcontext()
    import jax

    return jax.enable_x64(True)


# --- data -----------------------------------------------------------------------------


def _label_column(label: str | None):
    if label is None:
        return -1
    return int(label) if label.lstrip("-").isdigit() else label


def _is_file(name: str) -> bool:
    from fnann.app import datasets

    return name not in datasets.NAMES


def _file_digest(path: str) -> str:
    import hashlib

    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def load_data(name: str, *, label: str | None = None, test_size: float = 0.2, seed: int = 0,
              standardize: bool = True, task: str = "auto", delimiter: str | None = None,
              dtype: str = "float32"):
    """A bundled/synthetic dataset by name, or the user's CSV/.npz file."""
    from fnann.app import datasets

    if name in datasets.NAMES:
        ds = datasets.load(name, test_size=test_size, seed=seed, standardize=standardize, dtype=dtype)
        if task not in ("auto", ds.task):
            raise UsageError(f"{name} is a {ds.task} set; --task {task} applies to your own files")
        if label is not None:
            raise UsageError(f"--label applies to your own files; {name} is a bundled set")
        return ds
    if os.path.exists(name) or name.endswith((".csv", ".npz", ".txt", ".tsv")):
        return datasets.load_file(name, label=_label_column(label), test_size=test_size, seed=seed,
                                  standardize=standardize, task=task, delimiter=delimiter, dtype=dtype)
    raise UsageError(f"unknown dataset {name!r}: use one of {', '.join(datasets.NAMES)} "
                     "or the path of a .csv/.npz file")


def _validation_split(data, size: float, seed: int):
    """Carves a validation set out of the training split (stratified for classification)."""
    from fnann.app import datasets

    labels = data.y_train if data.task == "classification" else None
    train, val = datasets._split(labels, len(data.x_train), size, seed + 1)
    return (data.x_train[train], data.y_train[train]), (data.x_train[val], data.y_train[val])


def class_targets(labels, net, loss):
    """The targets a classifier trains on, built from integer labels 0..k-1.

    Cross-entropy takes the labels themselves; a one-output network (sigmoid, two classes)
    takes 0/1 as a column; any other (MSE, binary cross-entropy over k sigmoids) one-hot rows.
    """
    import numpy as np

    from fnann.app.datasets import one_hot

    labels = np.asarray(labels)
    if loss.name == "cross_entropy":
        return labels
    if net.n_out == 1:
        return labels.reshape(-1, 1).astype(np.float32)
    return one_hot(labels, net.n_out)


def _n_outputs(n_classes: int, output: str) -> int:
    """Two classes on a sigmoid output: one unit, P(class 1). Otherwise one unit per class."""
    return 1 if n_classes == 2 and output == "sigmoid" else n_classes


def _describe(net) -> str:
    """``64-128-64-10 relu/softmax``: a readable name for a network."""
    return f"{'-'.join(map(str, net.sizes))} {net.hidden.name}/{net.output.name}"


# --- train ----------------------------------------------------------------------------


def _add_train(sub) -> None:
    d = TRAIN_DEFAULTS
    p = sub.add_parser(
        "train", help="train and verify a network (default: 64-128-64-10 on digits)",
        description="Train an MLP with hand-derived gradients (verified against autodiff at the "
        "start), report test accuracy (classification) or RMSE and R² (regression), and save a "
        "checkpoint, history.csv and a plot of the curves in --out. The checkpoint records every "
        "option, so --resume needs none of them again and refuses the ones that would change the run.",
        epilog="With --resume, options left out are taken from the checkpoint; --epochs (epochs to add) "
        "and --patience may change, --lr and --method change with a note, any other option that differs "
        "from the recorded run is refused.")
    g = p.add_argument_group("data")
    g.add_argument("--data", help="bundled dataset (digits, iris, breast_cancer, wine, diabetes), "
                   "synthetic one (xor, spirals, sine) or a .csv/.npz file (default digits)")
    g.add_argument("--label", help="label column of a CSV file: index or header name (default: the last)")
    g.add_argument("--task", choices=TASKS, help="classification or regression; auto (the default) "
                   "infers it: text labels or at most 50 distinct integers mean classification")
    g.add_argument("--delimiter", type=_delimiter, help="column separator of a text file: one character, "
                   "or tab, comma, semicolon, space, pipe (default: detected)")
    g.add_argument("--test-size", type=_fraction, help=f"fraction held out for testing (default {d['test_size']})")
    g.add_argument("--val-size", type=_fraction, help="fraction of the training split held out for "
                   f"validation (default {d['val_size']})")
    g.add_argument("--seed", type=_count, help=f"seed of the split, the init and the shuffles (default {d['seed']})")
    g = p.add_argument_group("network")
    g.add_argument("--hidden-sizes", type=_sizes, help="hidden layer widths (default 128,64: the "
                   "64-128-64-10 network on digits)")
    g.add_argument("--hidden", metavar="NAME", help=f"hidden activation: {', '.join(ACTIVATION_NAMES)} "
                   f"(default {d['hidden']})")
    g.add_argument("--output", metavar="NAME", help=f"output activation: {', '.join(ACTIVATION_NAMES)} "
                   "(default: softmax for classification, sigmoid with --loss binary_cross_entropy, "
                   "identity for regression)")
    g.add_argument("--loss", metavar="NAME", help=f"loss: {', '.join(LOSS_NAMES)} (default: cross_entropy "
                   "for a softmax classifier, binary_cross_entropy for a sigmoid one, mse otherwise); "
                   "classification targets are built from the labels (one-hot, or 0/1 for one output)")
    g.add_argument("--dtype", choices=DTYPES, help=f"parameter and data dtype (default {d['dtype']})")
    g = p.add_argument_group("optimizer")
    g.add_argument("--optimizer", choices=OPTIMIZERS, help=f"(default {d['optimizer']})")
    g.add_argument("--lr", type=_positive, help="learning rate (default: "
                   + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LR.items()) + ")")
    g.add_argument("--gamma", type=_number(float, 0, 1, high_open=True),
                   help=f"momentum coefficient (momentum only; default {d['gamma']})")
    g.add_argument("--beta", type=_number(float, 0, 1, high_open=True),
                   help=f"RMSProp decay (rmsprop only; default {d['beta']})")
    g.add_argument("--b1", type=_number(float, 0, 1, high_open=True),
                   help=f"Adam first-moment decay (adam only; default {d['b1']})")
    g.add_argument("--b2", type=_number(float, 0, 1, high_open=True),
                   help=f"Adam second-moment decay (adam only; default {d['b2']})")
    g.add_argument("--eps", type=_positive, help=f"RMSProp/Adam epsilon (default {d['eps']:g})")
    g.add_argument("--clip", type=_positive, help="clip gradients to this global norm (default: off)")
    g.add_argument("--weight-decay", type=_number(float, 0), help="weight decay lambda (default "
                   f"{d['weight_decay']:g}; 0: off). Coupled L2 by default: lambda*theta is added to the "
                   "gradient before the optimizer, biases included")
    g.add_argument("--decoupled", action="store_const", const=True, default=None,
                   help="decoupled weight decay instead: AdamW, theta -= lr*lambda*theta beside Adam's "
                   "step, weights only (not biases); needs --optimizer adam")
    g.add_argument("--schedule", choices=SCHEDULES, help="learning-rate schedule over the run's steps: "
                   "cosine decay to 0, exponential decay to lr*--decay-rate, linear warmup over "
                   f"--warmup-epochs, or warmup then cosine (default {d['schedule']})")
    g.add_argument("--warmup-epochs", type=_count, help=f"epochs of linear warmup (default {d['warmup_epochs']})")
    g.add_argument("--decay-rate", type=_number(float, 0, 1, low_open=True),
                   help=f"exponential schedule: lr at the end of the run / lr (default {d['decay_rate']})")
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=_count, help=f"epochs to run (with --resume: to add) (default {d['epochs']})")
    g.add_argument("--batch-size", type=_batch_size, help="1 (SGD), an integer (mini-batches) or "
                   f"'full' (default {d['batch_size']})")
    g.add_argument("--patience", type=_count, help="stop after this many epochs without a better "
                   "validation loss and keep the best epoch's params (default: off)")
    g.add_argument("--method", choices=("manual", "autodiff"), help="gradients by the hand-derived "
                   f"backward pass or by jax.grad (default {d['method']})")
    g = p.add_argument_group("output")
    g.add_argument("--out", help=f"output folder (default {DEFAULT_OUT}); one run at a time")
    g.add_argument("--resume", action="store_true", help="continue the run whose checkpoint is in --out")
    g.add_argument("--overwrite", action="store_true", help="replace an existing checkpoint")
    g.add_argument("--no-gradcheck", action="store_true", help="skip the gradient check at the start")
    g.add_argument("--no-plot", action="store_true", help="do not write curves.png")
    g.add_argument("--no-progress", action="store_true", help="plain lines instead of a progress bar")
    g.add_argument("--diagnostics", type=_number(int, 1), nargs="?", const=1, metavar="K",
                   help="record gradient-flow diagnostics (per-layer gradient norms, update ratios, dead "
                   "and saturated units) on 256 training examples every K epochs (default 1): prints the "
                   "last table and writes diagnostics.png (a layers x epochs heatmap)")
    _add_common(p)
    p.set_defaults(run=_run_train)


def _text(value) -> str:
    """An option's value as one would type it: 128,64 for widths, 0.001 for floats."""
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def _same(key: str, a, b) -> bool:
    if key == "hidden_sizes":
        return list(a) == list(b)
    if key == "data" and _is_file(a) and _is_file(b):
        return os.path.abspath(a) == os.path.abspath(b)
    return a == b


def train_options(args, recorded: dict | None):
    """The run's options: the command line over the record of a resumed run, over the defaults.

    Returns ``(options, notes)``. Raises UsageError for an option that does not apply (``--gamma``
    with Adam), or, with ``--resume``, for options that differ from the recorded run.
    """
    given = {k: getattr(args, k) for k in TRAIN_DEFAULTS if getattr(args, k, None) is not None}
    notes = []
    if recorded is not None:
        changed = []
        for key, value in given.items():
            if key in RESUME_FREE or key not in recorded or _same(key, value, recorded[key]):
                continue
            if key == "task" and value == "auto":
                continue
            if key in RESUME_NOTED:
                notes.append(f"note: {_flag(key)} {_text(value)} replaces the recorded {_text(recorded[key])}: "
                             f"{RESUME_NOTED[key]}")
                continue
            changed.append(f"{_flag(key)} {_text(value)} (recorded: {_text(recorded[key])})")
        if changed:
            raise UsageError("--resume continues the recorded run, but these options differ from it: "
                             + "; ".join(changed) + ". Leave them out, or start a new run (--overwrite or "
                             "another --out)")
    opts = {**TRAIN_DEFAULTS, **(recorded or {}), **given}
    for key in given:
        for name, table in (("optimizer", OPTIMIZER_OPTIONS), ("schedule", SCHEDULE_OPTIONS)):
            owners = [o for o, keys in table.items() if key in keys]
            if owners and opts[name] not in owners:
                raise UsageError(f"{_flag(key)} applies to --{name} {' or '.join(owners)}, not to "
                                 f"--{name} {opts[name]}")
    if "epochs" not in given:
        opts["epochs"] = TRAIN_DEFAULTS["epochs"]
    return opts, notes


def build_optimizer(opts: dict, steps_per_epoch: int, schedule_steps: int):
    """The optimizer of a run: clip, then L2 (or AdamW's decoupled decay), then the optimizer with its
    learning-rate schedule."""
    import fnann
    from fnann.optim import schedules

    lr = opts["lr"]
    warmup = opts["warmup_epochs"] * steps_per_epoch
    kind = opts["schedule"]
    if kind == "warmup_cosine" and warmup >= schedule_steps:
        raise UsageError(f"--warmup-epochs {opts['warmup_epochs']} leaves no epoch to decay over in a run "
                         f"of {schedule_steps // steps_per_epoch} epochs")
    rate = {
        "constant": lambda: lr,
        "cosine": lambda: schedules.cosine_decay(lr, schedule_steps),
        "exponential": lambda: schedules.exponential_decay(lr, opts["decay_rate"], schedule_steps),
        "warmup": lambda: schedules.linear_warmup(0.0, lr, warmup) if warmup else lr,
        "warmup_cosine": lambda: schedules.warmup_cosine_decay(lr, warmup, schedule_steps),
    }[kind]()
    opt = {"adam": lambda: fnann.adam(rate, b1=opts["b1"], b2=opts["b2"], eps=opts["eps"]),
           "sgd": lambda: fnann.sgd(rate),
           "momentum": lambda: fnann.momentum(rate, gamma=opts["gamma"]),
           "rmsprop": lambda: fnann.rmsprop(rate, beta=opts["beta"], eps=opts["eps"])}[opts["optimizer"]]()
    decoupled = bool(opts.get("decoupled"))
    if decoupled and opts["optimizer"] != "adam":
        raise UsageError(f"--decoupled is AdamW and needs --optimizer adam; got {opts['optimizer']}")
    if decoupled:
        opt = fnann.adamw(rate, b1=opts["b1"], b2=opts["b2"], eps=opts["eps"],
                          weight_decay=opts["weight_decay"], mask=fnann.weights_only)
    steps = ([fnann.clip_by_global_norm(opts["clip"])] if opts["clip"] else []) + (
        [fnann.add_decayed_weights(opts["weight_decay"])] if opts["weight_decay"] and not decoupled else [])
    return fnann.chain(*steps, opt) if steps else opt


def _describe_optimizer(opts: dict) -> str:
    text = f"{opts['optimizer']} lr {opts['lr']:g}"
    if opts["schedule"] != "constant":
        text += f" ({opts['schedule']} schedule)"
    if opts["weight_decay"]:
        text += f" + {'decoupled' if opts.get('decoupled') else 'L2'} {opts['weight_decay']:g}"
    if opts["clip"]:
        text += f", clip {opts['clip']:g}"
    return text


class Progress:
    """One progress bar (tqdm, on a terminal) or one plain line per epoch."""

    def __init__(self, total: int, first: int, plain: bool, show_accuracy: bool = True):
        self.bar = None
        if not plain and sys.stderr.isatty():
            try:
                from tqdm.auto import tqdm
                self.bar = tqdm(total=total, initial=0, unit="epoch", desc="training")
            except ImportError:
                pass
        self.total, self.first, self.show_accuracy = total, first, show_accuracy

    def __call__(self, epoch: int, logs: dict) -> None:
        shown = {"loss": logs["loss"]}
        for k in ("val_loss", "val_accuracy") if self.show_accuracy else ("val_loss",):
            if k in logs:
                shown[k.replace("accuracy", "acc")] = logs[k]
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix({k: f"{v:.4f}" for k, v in shown.items()})
        else:
            text = "  ".join(f"{k} {v:.4f}" for k, v in shown.items())
            print(f"epoch {epoch + 1:4d}/{self.first + self.total}  {text}", flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@contextlib.contextmanager
def _run_folder(out: Path):
    """Holds the lock of the run folder (proving it writable) for the duration of the run."""
    from fnann.app.runlock import FolderInUse, RunLock

    lock = RunLock(out)
    try:
        lock.__enter__()
    except FolderInUse as e:
        raise UsageError(str(e)) from None
    except OSError as e:
        raise UsageError(f"cannot write to --out {out}: {e.strerror or e}") from None
    try:
        yield lock
    finally:
        lock.__exit__(None, None, None)


def _run_train(args) -> int:
    start = time.perf_counter()
    out = Path(args.out or DEFAULT_OUT)
    ckpt_path = out / "checkpoint.npz"
    if args.resume and args.overwrite:
        raise UsageError("--resume continues the checkpoint and --overwrite replaces it: pass one of them")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    if ckpt_path.exists() and not (args.resume or args.overwrite):
        raise UsageError(f"{ckpt_path} exists: pass --resume to continue it or --overwrite to replace it")
    if args.resume and not ckpt_path.exists():
        raise UsageError(f"--resume: no checkpoint at {ckpt_path}")
    recorded = None
    if args.resume:  # read the record first: it says which options the run has
        recorded = _load_checkpoint(str(ckpt_path))[0].meta.get("run")
        if not recorded:
            raise UsageError(f"{ckpt_path} holds no record of its run's options (an older fnann wrote it), "
                             "so --resume cannot check that it continues the same run; start anew with --overwrite")
    opts, notes = train_options(args, recorded)
    wide = opts["dtype"] == "float64"
    with _run_folder(out), _plotter(args) as plotter:
        if ckpt_path.exists() and not (args.resume or args.overwrite):  # another run just wrote it
            raise UsageError(f"{ckpt_path} exists: pass --resume to continue it or --overwrite to replace it")
        enable_compilation_cache(args)
        with _x64(wide), _compiling_ahead(wide) as ahead:
            return _train(args, opts, notes, recorded, out, ckpt_path, start, plotter, ahead)


@functools.cache
def _run_keys():
    """``seed -> (init key, fit key)``, the split of ``jax.random.key(seed)``, as one program
    (eagerly it is four: the seed's conversion, the seeding, the split and the unstacking)."""
    import jax

    return jax.jit(lambda seed: tuple(jax.random.split(jax.random.key(seed))))


@contextlib.contextmanager
def _compiling_ahead(wide: bool):
    """``ahead(fn, *args)``: runs ``fn`` (a ``compile_*`` function) on a second thread and
    returns its future. XLA compiles without holding the GIL, so the epoch compiles while the
    gradient check runs. An error there is dropped: the call it prepares raises it itself.
    ``enable_x64`` is per thread, so the thread enters the run's setting."""
    import concurrent.futures

    import jax

    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="fnann-compile")

    def ahead(fn, *args, **kwargs):
        def run():
            with jax.enable_x64(wide):
                try:
                    fn(*args, **kwargs)
                except Exception:  # noqa: BLE001 (reported by the real call)
                    pass

        return pool.submit(run)

    try:
        yield ahead
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def _plotter(args):
    """The helper process that draws the curves (started before JAX is imported, so that
    matplotlib loads on another core meanwhile), or None: no plot, or matplotlib is absent
    (then the in-process path reports the missing extra)."""
    import importlib.util

    if args.no_plot or importlib.util.find_spec("matplotlib") is None:
        yield None
        return
    from fnann.app.plot_worker import PlotWorker

    try:
        worker = PlotWorker()
    except OSError:  # no process could be started: draw in this one
        yield None
        return
    with worker:
        yield worker


def _plot_curves(plotter, history, path: Path, title: str, best_epoch):
    """Starts drawing the curves; returns a function that waits for the written path."""
    if plotter is None:
        def draw():
            from fnann.app.plots import plot_history

            return plot_history(history, path, title=title, best_epoch=best_epoch)

        return draw
    plotter.submit(history, path, title, best_epoch)
    return plotter.result


def _train(args, opts, notes, recorded, out: Path, ckpt_path: Path, start: float, plotter=None,
           ahead=None) -> int:
    import jax
    import numpy as np

    import fnann
    from fnann.app import metrics
    from fnann.app.history import save_history

    data = load_data(opts["data"], label=opts["label"], test_size=opts["test_size"], seed=opts["seed"],
                     task=opts["task"], delimiter=opts["delimiter"], dtype=opts["dtype"])
    is_file = _is_file(opts["data"])
    digest = _file_digest(opts["data"]) if is_file else None
    if recorded is not None and recorded.get("data_sha256") != digest:
        raise UsageError(f"--resume: {opts['data']} changed since the checkpoint was written (its SHA-256 "
                         "differs), so the splits would not be the run's; start anew with --overwrite")
    classify = data.task == "classification"
    if args.task not in (None, "auto"):
        print(f"task {data.task} (--task)")
    elif recorded is not None:
        print(f"task {data.task} (the recorded run's)")
    else:
        hint = f"; --task {'regression' if classify else 'classification'} overrides it" if is_file else ""
        print(f"task {data.task}: {data.task_reason}{hint}")
    output = opts["output"]
    if output is None:
        output = ("sigmoid" if opts["loss"] == "binary_cross_entropy" else "softmax") if classify else "identity"
    loss_name = opts["loss"]
    if loss_name is None:
        loss_name = ({"softmax": "cross_entropy", "sigmoid": "binary_cross_entropy"}.get(output, "mse")
                     if classify else "mse")
    lr = opts["lr"] if opts["lr"] is not None else DEFAULT_LR[opts["optimizer"]]
    opts = {**opts, "task": data.task, "output": output, "loss": loss_name, "lr": lr,
            "data": os.path.abspath(opts["data"]) if is_file else opts["data"]}
    n_out = _n_outputs(data.n_classes, output) if classify else data.n_outputs
    net = fnann.MLP((data.n_features, *opts["hidden_sizes"], n_out), hidden=opts["hidden"], output=output)
    loss = fnann.get_loss(loss_name)
    (x_tr, y_tr), (x_val, y_val) = _validation_split(data, opts["val_size"], opts["seed"])

    def targets(y):
        return class_targets(y, net, loss) if classify else y

    batch = None if opts["batch_size"] == "full" else opts["batch_size"]
    steps_per_epoch = max(1, math.ceil(len(x_tr) / min(batch or len(x_tr), len(x_tr))))
    schedule_steps = (recorded or {}).get("schedule_steps") or max(1, opts["epochs"] * steps_per_epoch)
    opt = build_optimizer(opts, steps_per_epoch, schedule_steps)
    dtype = np.dtype(opts["dtype"])
    t_tr, t_val = targets(y_tr), targets(y_val)
    if ahead is not None:  # compiled on the second thread, from the shapes, while this one
        # draws the params and checks the gradients
        key_shape = jax.eval_shape(_run_keys(), opts["seed"])[1]
        param_shapes = jax.eval_shape(lambda k: fnann.init(k, net, dtype=dtype), key_shape)
        fit_compiled = ahead(fnann.train.compile_fit, net, loss, opt, param_shapes, x_tr, t_tr, batch_size=batch,
                             method=opts["method"], validation_data=(x_val, t_val), key=key_shape)
        test_compiled = ahead(fnann.inference.compile_inference, net, param_shapes, data.x_test,
                              targets(data.y_test), loss)
    k_init, k_fit = _run_keys()(opts["seed"])
    params, opt_state, first, history = fnann.init(k_init, net, dtype=dtype), None, 0, {}
    if recorded is not None:
        ck = fnann.load(ckpt_path, net=net)
        params, opt_state, first, k_fit, history = ck.params, ck.opt_state, ck.epoch, ck.key, ck.history
    for note in notes:
        print(note)
    print(f"fnann train: {data.name} ({len(x_tr)} train / {len(x_val)} validation / "
          f"{len(data.x_test)} test), {_describe(net)}, loss {loss.name}, {_describe_optimizer(opts)}, "
          f"batch {opts['batch_size']}, {opts['method']} gradients, {opts['dtype']}"
          + (f", from epoch {first}" if recorded is not None else ""))
    if not args.no_gradcheck:
        report = fnann.check_grads(net, loss, params, x_tr[:16], t_tr[:16], n_fd=8, seed=opts["seed"])
        print(report.summary())
        if not report.passed:
            print(report)
            return 1
    record = {k: opts[k] for k in TRAIN_DEFAULTS if k != "epochs"}
    for key in ("gamma", "beta", "b1", "b2", "eps", "warmup_epochs", "decay_rate"):
        if key not in OPTIMIZER_OPTIONS[opts["optimizer"]] + SCHEDULE_OPTIONS[opts["schedule"]]:
            del record[key]
    record.update(schedule_steps=schedule_steps, data_sha256=digest)
    meta = {"data": opts["data"], "task": data.task, "test_size": opts["test_size"], "seed": opts["seed"],
            "label": opts["label"], "loss": loss.name, "optimizer": opts["optimizer"],
            "classes": list(map(str, data.classes)) if classify else None, "run": record,
            "fnann_version": fnann.__version__}
    for field in ("x_mean", "x_std", "target_mean", "target_std"):
        value = getattr(data, field)
        meta[field] = None if value is None else np.asarray(value, np.float64).tolist()
    show_accuracy = classify and not (output == "sigmoid" and n_out > 1)  # fit's is per output there
    recorder = None
    if args.diagnostics:
        recorder = fnann.diagnostics.Recorder(net, loss, x_tr[:256], t_tr[:256], opt, every=args.diagnostics)
        recorder.record(first, params, opt_state if opt_state is not None else opt.init(params))
    progress = Progress(opts["epochs"], first, args.no_progress, show_accuracy)
    if ahead is not None:
        fit_compiled.result()
    try:
        params, new_history, state = fnann.fit(
            net, loss, opt, params, x_tr, t_tr, key=k_fit, epochs=opts["epochs"],
            batch_size=batch, method=opts["method"], validation_data=(x_val, t_val),
            opt_state=opt_state, initial_epoch=first, patience=opts["patience"],
            callback=progress, return_state=True, params_callback=recorder)
    except fnann.TrainingDivergedError as e:
        progress.close()
        path = out / "diverged.npz"
        so_far = {k: list(history.get(k, [])) + list(v) for k, v in e.history.items()}
        fnann.save(path, net, e.params, e.opt_state, epoch=e.epoch, key=k_fit, history=so_far, meta=meta)
        kept = f"the params after epoch {e.epoch}" if e.epoch else "the initial params"
        raise UsageError(f"training diverged in epoch {e.epoch + 1}: the loss or the params became NaN or inf; "
                         f"{kept} (the last finite ones) are saved in {path}"
                         + (f", {ckpt_path} is unchanged" if recorded is not None else "")
                         + f"; try a smaller --lr (now {lr:g}), --clip 1 or --schedule warmup") from None
    finally:
        progress.close()
    if not show_accuracy:
        new_history.pop("val_accuracy", None)
    if recorder is not None:
        print(f"gradient flow after epoch {recorder.epochs[-1]} ({len(recorder.x)} training examples):\n"
              + fnann.diagnostics.format_diagnostics(recorder.records[-1], net))
    history = {k: list(history.get(k, [])) + v for k, v in new_history.items()}
    best_epoch = None
    if opts["patience"] is not None and new_history["val_loss"]:
        ran = len(new_history["loss"])
        i = int(np.argmin(new_history["val_loss"]))
        best_epoch = first + i
        stopped = (f"early stopping: no better validation loss for {opts['patience'] + 1} epochs, stopped "
                   f"after epoch {first + ran}" if ran < opts["epochs"] else
                   f"early stopping: ran all {ran} epochs")
        print(f"{stopped}; kept the params of epoch {best_epoch + 1}, the best (val_loss "
              f"{new_history['val_loss'][i]:.4f})")
    if ahead is not None:
        test_compiled.result()
    y_hat = np.asarray(fnann.predict(net, params, data.x_test))
    test = fnann.evaluate(net, params, data.x_test, targets(data.y_test), loss)
    if classify:
        test["accuracy"] = float(np.mean(metrics.predicted_classes(y_hat) == data.y_test))
        print(f"test accuracy {test['accuracy']:.4f}  test loss {test['loss']:.4f}")
        title = f"{data.name}: {_describe(net)}, test accuracy {test['accuracy']:.3f}"
    else:
        test["rmse"], test["r2"] = metrics.rmse_r2(data.unscale_y(y_hat), data.unscale_y(data.y_test))
        print(f"test RMSE {test['rmse']:.4g}  R² {test['r2']:.4f}  (original units)  "
              f"test loss {test['loss']:.4f} ({loss.name}, standardized targets)")
        title = f"{data.name}: {_describe(net)}, test RMSE {test['rmse']:.4g}, R² {test['r2']:.3f}"
    meta["test"] = test
    curves = (_plot_curves(plotter, history, out / "curves.png", title, best_epoch)
              if not args.no_plot and history.get("loss") else None)  # drawn while the files are written
    fnann.save(ckpt_path, net, params, state.opt_state, epoch=state.epoch, key=state.key,
               history=history, meta=meta)
    print(f"saved {ckpt_path}")
    print(f"saved {save_history(out / 'history.csv', history)}")
    if curves is not None:
        from fnann.app.plot_worker import PlotError

        try:
            print(f"saved {curves()}")
            if recorder is not None:
                from fnann.app.diagnostics_plots import plot_heatmap

                print(f"saved {plot_heatmap(recorder.epochs, recorder.stacked(), out / 'diagnostics.png', title=title)}")
        except (ImportError, PlotError) as e:
            print(f"no plot: {e}")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0


# --- predict and evaluate -------------------------------------------------------------


def _load_checkpoint(path: str):
    """``(checkpoint, float64?)``; a float64 run's checkpoint is read under ``enable_x64``."""
    import fnann

    ck = fnann.load(path)
    if not ck.meta or "task" not in ck.meta:
        raise UsageError(f"{path} was not written by `fnann train` (no dataset information)")
    wide = (ck.meta.get("run") or {}).get("dtype") == "float64"
    if wide:
        with _x64(True):
            ck = fnann.load(path)
    return ck, wide


def _add_predict(sub) -> None:
    p = sub.add_parser("predict", help="predict with a saved network",
                       description="Predictions of a checkpoint written by `fnann train` for the "
                       "rows of a CSV/.npz file of features (no label column), standardized as in "
                       "training; class names and regression units are the training data's.")
    p.add_argument("checkpoint", help="checkpoint file (e.g. runs/fnann/checkpoint.npz)")
    p.add_argument("inputs", help="CSV (optional header) or .npz with an array x")
    p.add_argument("--output", help="write the predictions to this CSV file (default: print them)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    p.add_argument("--delimiter", type=_delimiter, help="column separator of a text file (default: detected)")
    _add_common(p)
    p.set_defaults(run=_run_predict)


def standardize(values, meta: dict, prefix: str):
    """(v - mean) / std with the training statistics a checkpoint's meta holds, if any."""
    import numpy as np

    if meta.get(f"{prefix}_mean") is None:
        return values
    mean, std = (np.asarray(meta[f"{prefix}_{k}"], np.float64) for k in ("mean", "std"))
    return (np.asarray(values, np.float64) - mean) / std


def _check_features(x, net, source: str) -> None:
    if x.shape[1] != net.n_in:
        extra = " (is the label column still in it?)" if x.shape[1] == net.n_in + 1 else ""
        raise UsageError(f"{source} has {x.shape[1]} feature columns but the network takes {net.n_in}{extra}")


def _check_writable(path: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    probe = folder
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise UsageError(f"cannot write {path}: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK):
        raise UsageError(f"cannot write {path}: the folder {probe} is not writable")


def _run_predict(args) -> int:
    if args.output:
        if os.path.exists(args.output) and not args.overwrite:
            raise UsageError(f"{args.output} exists; pass --overwrite to replace it")
        if os.path.isdir(args.output):
            raise UsageError(f"--output {args.output} is a folder; give a file name")
        _check_writable(args.output)
    enable_compilation_cache(args)
    import numpy as np

    import fnann
    from fnann.app import datasets, metrics

    ck, wide = _load_checkpoint(args.checkpoint)
    x = datasets.read_features(args.inputs, delimiter=args.delimiter)
    _check_features(x, ck.net, args.inputs)
    with _x64(wide):
        y_hat = np.asarray(fnann.predict(ck.net, ck.params, standardize(x, ck.meta, "x")))
    if ck.meta["task"] == "classification":
        classes = ck.meta.get("classes") or [str(i) for i in range(max(2, ck.net.n_out))]
        prefix = "p_" if ck.net.output.name in ("softmax", "sigmoid") else "score_"
        columns = classes[-1:] if ck.net.n_out == 1 else classes
        lines = ["prediction," + ",".join(f"{prefix}{c}" for c in columns)]
        lines += [f"{classes[k]}," + ",".join(f"{v:.6g}" for v in row)
                  for k, row in zip(metrics.predicted_classes(y_hat), y_hat)]
    else:
        if ck.meta.get("target_mean") is not None:
            y_hat = y_hat * np.asarray(ck.meta["target_std"]) + np.asarray(ck.meta["target_mean"])
        lines = [",".join(f"y{j}" for j in range(y_hat.shape[1]))]
        lines += [",".join(f"{v:.6g}" for v in row) for row in y_hat]
    text = "\n".join(lines) + "\n"
    if args.output:
        from fnann.atomic import atomic_write
        atomic_write(args.output, text.encode())
        print(f"wrote {len(y_hat)} predictions to {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="loss and accuracy (or RMSE and R²) of a saved network",
                       description="Evaluate a checkpoint written by `fnann train` on the test "
                       "split of its dataset (default) or on every row of another labelled "
                       "dataset/file, read through the checkpoint's classes and standardization.")
    p.add_argument("checkpoint", help="checkpoint file (e.g. runs/fnann/checkpoint.npz)")
    p.add_argument("--data", help="dataset name or labelled .csv/.npz (default: the training "
                   "dataset's test split)")
    p.add_argument("--label", help="label column of a CSV file (default: the training run's, else the last)")
    p.add_argument("--delimiter", type=_delimiter, help="column separator of a text file (default: detected)")
    _add_common(p)
    p.set_defaults(run=_run_evaluate)


def _class_indices(y, classes, known: list[str], source: str):
    """Labels (indices into ``classes``) as indices into the checkpoint's class list ``known``."""
    import numpy as np

    index = {c: i for i, c in enumerate(known)}
    names = np.asarray([str(c) for c in classes], dtype=object)[np.asarray(y)]
    unseen = sorted(set(names) - index.keys())
    if unseen:
        raise UsageError(f"{source}: label{'s' if len(unseen) > 1 else ''} {', '.join(unseen[:5])}"
                         f"{' ...' if len(unseen) > 5 else ''} never seen in training; the model knows "
                         f"{', '.join(known[:20])}{' ...' if len(known) > 20 else ''}")
    return np.asarray([index[n] for n in names], np.int32)


def _run_evaluate(args) -> int:
    enable_compilation_cache(args)
    import numpy as np

    import fnann
    from fnann.app import datasets, metrics

    ck, wide = _load_checkpoint(args.checkpoint)
    m, run = ck.meta, ck.meta.get("run") or {}
    classify = m["task"] == "classification"
    if args.data is None:  # the test split of the training data, exactly as training made it
        if run.get("data_sha256") and run["data_sha256"] != _file_digest_or_none(m["data"]):
            raise UsageError(f"{m['data']} changed (or is gone) since training, so its test split is not the "
                             "run's; pass --data FILE to evaluate on all of its rows")
        data = load_data(m["data"], label=m.get("label"), test_size=m["test_size"], seed=m["seed"],
                         task=m["task"], delimiter=run.get("delimiter"), dtype=run.get("dtype", "float32"))
        x, y, classes, source = data.x_test, data.y_test, data.classes, f"{m['data']} (test split)"
        y_units = None if classify else data.unscale_y(y)
    else:  # every row of another dataset, read through the training statistics
        if args.data in datasets.NAMES:
            d = load_data(args.data, test_size=0.5, seed=0, standardize=False, task=m["task"])
            x, y, classes = np.concatenate([d.x_train, d.x_test]), np.concatenate([d.y_train, d.y_test]), d.classes
        else:
            label = args.label if args.label is not None else (m.get("label") if _is_file(m["data"]) else None)
            t = datasets.read_labelled(args.data, label=_label_column(label), task=m["task"],
                                       delimiter=args.delimiter)
            x, y, classes = t.x, t.y, t.classes
        source = args.data
        _check_features(x, ck.net, source)
        x = standardize(x, m, "x")
        y_units = None if classify else np.asarray(y, np.float64)
        if not classify:
            if y_units.shape[1] != ck.net.n_out:
                raise UsageError(f"{source} has {y_units.shape[1]} target columns but the network has "
                                 f"{ck.net.n_out} outputs")
            y = standardize(y_units, m, "target")
    _check_features(x, ck.net, source)
    loss = fnann.get_loss(m["loss"])
    with _x64(wide):
        if classify:
            labels = _class_indices(y, classes, m["classes"], source)
            result = fnann.evaluate(ck.net, ck.params, x, class_targets(labels, ck.net, loss), loss)
            y_hat = np.asarray(fnann.predict(ck.net, ck.params, x))
            result["accuracy"] = float(np.mean(metrics.predicted_classes(y_hat) == labels))
            print(f"accuracy {result['accuracy']:.4f}  loss {result['loss']:.4f}  ({len(x)} examples)")
        else:
            result = fnann.evaluate(ck.net, ck.params, x, y, loss)
            y_hat = np.asarray(fnann.predict(ck.net, ck.params, x))
            if m.get("target_mean") is not None:
                y_hat = y_hat * np.asarray(m["target_std"]) + np.asarray(m["target_mean"])
            rmse, r2 = metrics.rmse_r2(y_hat, y_units)
            print(f"RMSE {rmse:.4g}  R² {r2:.4f}  (original units)  loss {result['loss']:.4f} "
                  f"({loss.name}, standardized targets)  ({len(x)} examples)")
    return 0


def _file_digest_or_none(path: str):
    try:
        return _file_digest(path)
    except OSError:
        return None


# --- gradcheck ------------------------------------------------------------------------


def _add_gradcheck(sub) -> None:
    p = sub.add_parser("gradcheck", help="verify the hand-derived gradients of a network",
                       description="Build a network, draw random data and compare the manual "
                       "gradients with jax.grad and central finite differences in float64.")
    p.add_argument("--sizes", type=_sizes, default=(64, 128, 64, 10),
                   help="layer widths, inputs first (default 64,128,64,10)")
    p.add_argument("--hidden", default="relu", metavar="NAME",
                   help=f"hidden activation: {', '.join(ACTIVATION_NAMES)} (default relu)")
    p.add_argument("--output", default="softmax", metavar="NAME",
                   help=f"output activation: {', '.join(ACTIVATION_NAMES)} (default softmax)")
    p.add_argument("--loss", default="cross_entropy", metavar="NAME",
                   help=f"loss: {', '.join(LOSS_NAMES)} (default cross_entropy)")
    p.add_argument("--batch", type=int, default=32, help="batch size of the random data (default 32)")
    p.add_argument("--n-fd", type=int, default=32,
                   help="entries per array checked by finite differences (0: all; default 32)")
    p.add_argument("--seed", type=int, default=0, help="seed of the params and the data (default 0)")
    _add_common(p)
    p.set_defaults(run=_run_gradcheck)


def _run_gradcheck(args) -> int:
    if len(args.sizes) < 2:
        raise UsageError(f"--sizes needs at least two widths; got {','.join(map(str, args.sizes))}")
    if args.batch < 1:
        raise UsageError(f"--batch must be >= 1; got {args.batch}")
    if args.n_fd < 0:
        raise UsageError(f"--n-fd must be >= 0; got {args.n_fd}")
    enable_compilation_cache(args)
    import jax

    import fnann

    net = fnann.MLP(args.sizes, hidden=args.hidden, output=args.output)
    loss = fnann.get_loss(args.loss)
    k_init, k_x, k_y = jax.random.split(jax.random.key(args.seed), 3)
    params = fnann.init(k_init, net)
    x = jax.random.normal(k_x, (args.batch, net.n_in))
    if loss.name == "cross_entropy":
        y = jax.random.randint(k_y, (args.batch,), 0, net.n_out)
    elif loss.name == "binary_cross_entropy":
        y = jax.random.bernoulli(k_y, 0.5, (args.batch, net.n_out)).astype(x.dtype)
    else:
        y = jax.random.normal(k_y, (args.batch, net.n_out))
    report = fnann.check_grads(net, loss, params, x, y, n_fd=args.n_fd or None, seed=args.seed)
    print(report)
    return 0 if report.passed else 1


# --- explain --------------------------------------------------------------------------


def _floats(text: str) -> list[float]:
    try:
        return [float(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers like 0.5,-1; got {text!r}") from None


def _add_explain(sub) -> None:
    p = sub.add_parser("explain", help="every equation of backprop with its numbers, for a tiny network",
                       description="Push one example through a tiny network and print, in order, each "
                       "Z and A, the loss, every delta, every dL/dW and dL/db (beside the values jax.grad "
                       "gives) and one optimizer step with its state. Negative values: --x=-0.5,1.")
    p.add_argument("--sizes", type=_sizes, default=(2, 3, 2), help="layer widths (default 2,3,2)")
    p.add_argument("--hidden", default="sigmoid", help=f"hidden activation: {', '.join(ACTIVATION_NAMES)} "
                   "(default sigmoid)")
    p.add_argument("--output", default="softmax", help="output activation (default softmax)")
    p.add_argument("--loss", help="default: cross_entropy for softmax, binary_cross_entropy for sigmoid, "
                   "mse otherwise")
    p.add_argument("--x", type=_floats, help="the example's inputs, e.g. --x=0.5,-1 (default: drawn from --seed)")
    p.add_argument("--y", type=_floats, help="its target: a class label (cross_entropy) or one value per "
                   "output (default: drawn from --seed)")
    p.add_argument("--seed", type=_count, default=0, help="seed of the parameters (and of x, y if not given)")
    p.add_argument("--optimizer", default="sgd", choices=OPTIMIZERS, help="the step shown at the end (default sgd)")
    p.add_argument("--lr", type=_positive, help="learning rate (default: "
                   + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LR.items()) + ")")
    p.add_argument("--textbook", action="store_true", help="delta^(L) by the chain dL/dA then sigma', even "
                   "where the fused A - y applies")
    p.add_argument("--format", choices=("text", "markdown"), default="text")
    _add_common(p)
    p.set_defaults(run=_run_explain)


def _run_explain(args) -> int:
    enable_compilation_cache(args)
    from fnann.app.explain import run_cli

    lr = args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]
    opts = {**TRAIN_DEFAULTS, "optimizer": args.optimizer, "lr": lr, "weight_decay": 0.0}
    opt = build_optimizer(opts, steps_per_epoch=1, schedule_steps=1)
    print(run_cli(args, opt, f"{args.optimizer}(lr={lr:g})"), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fnann", description="The textbook feed-forward network in JAX, with "
                     "hand-derived backprop verified against autodiff.")
    parser.add_argument("--version", action=_Version, help="print the versions of fnann and jax and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    _add_train(sub)
    _add_predict(sub)
    _add_evaluate(sub)
    _add_gradcheck(sub)
    _add_explain(sub)
    return parser


def _one_line(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror and e.filename:
        return f"{e.filename}: {e.strerror}"
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def main(argv: list[str] | None = None) -> int:
    """The command line: runs ``fnann <argv>`` and returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (UsageError, ValueError, TypeError, OSError, ImportError) as e:
        print(f"fnann {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fnann {args.command}: interrupted", file=sys.stderr)
        return 130


def console() -> None:
    """Entry point of the ``fnann`` console script and of ``python -m fnann``: `main`, then
    the process ends at once.

    Everything the command writes is complete by then (atomic, flushed files; the plotting
    helper reaped; the run folder's lock is the kernel's to drop). What ``os._exit`` skips is
    the interpreter's teardown: JAX's exit handlers clearing its backends and caches and the
    garbage collection of every compiled program, about 0.25 s of a 2 s command.
    """
    try:
        code = main()
    except SystemExit as e:  # argparse's --help, --version and usage errors
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
        if not isinstance(e.code, (int, type(None))):
            print(e.code, file=sys.stderr)
    if "jax" in sys.modules:
        sys.modules["jax"].effects_barrier()  # nothing JAX dispatched is still running
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (fnann ... | head): nothing left to say
            pass
    os._exit(code)


if __name__ == "__main__":
    console()
