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
the very same run (it refuses options that would change it). The options of ``train`` are
declared once, in `fnann.app.options.TrainOptions`; the run itself is
`fnann.app.training.run_training`.
"""

from __future__ import annotations

import argparse
import os
import sys

from fnann.app.common import UsageError, class_names, class_targets, default_cache_dir, \
    enable_compilation_cache, file_digest, is_file, label_column, load_checkpoint, load_data, standardize, \
    with_stats, x64
from fnann.app.options import ACTIVATIONS as ACTIVATION_NAMES, LOSSES as LOSS_NAMES, OPTIMIZERS, SCHEDULES, \
    TRAIN_DEFAULTS, Help, TrainOptions, add_train_options, count, decay, given_options, hidden_activations, number, \
    norm_names, parse_delimiter, optimizer_factory, parse_norm, parse_seed, parse_sizes, positive, train_options
from fnann.app.training import DEFAULT_OUT, build_optimizer, run_training

__all__ = ["main", "console", "build_parser", "UsageError", "TRAIN_DEFAULTS", "train_options", "build_optimizer",
           "ACTIVATION_NAMES", "LOSS_NAMES", "OPTIMIZERS", "SCHEDULES"]


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error on one line (exit status 2), its help naming the
    library's activations, losses and optimizers (`Help`)."""

    def __init__(self, *args, formatter_class=Help, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)

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


def _cache(args) -> None:
    """JAX's persistent compilation cache, unless ``--no-cache``."""
    if not args.no_cache:
        enable_compilation_cache(args.cache_dir)


def _add_common(p) -> None:
    p.add_argument("--cache-dir", help=f"JAX compilation cache folder (default {default_cache_dir()}, "
                   "or $FNANN_CACHE_DIR)")
    p.add_argument("--no-cache", action="store_true", help="do not use the compilation cache")


# --- train ----------------------------------------------------------------------------


def _add_train(sub) -> None:
    p = sub.add_parser(
        "train", help="train and verify a network (default: 64-128-64-10 on digits)",
        description="Train an MLP with hand-derived gradients (verified against autodiff at the "
        "start), report test accuracy (classification) or RMSE and R² (regression), and save a "
        "checkpoint, history.csv and a plot of the curves in --out. The checkpoint records every "
        "option, so --resume needs none of them again and refuses the ones that would change the run.",
        epilog="With --resume, options left out are taken from the checkpoint; --epochs (epochs to add) "
        "and --patience may change, --lr and --method change with a note, any other option that differs "
        "from the recorded run is refused.")
    add_train_options(p)
    g = p.add_argument_group("output")
    g.add_argument("--out", help=f"output folder (default {DEFAULT_OUT}); one run at a time")
    g.add_argument("--resume", action="store_true", help="continue the run whose checkpoint is in --out")
    g.add_argument("--overwrite", action="store_true", help="replace an earlier run's files in --out (checkpoint, history, plots)")
    g.add_argument("--no-gradcheck", action="store_true", help="skip the gradient check at the start")
    g.add_argument("--no-plot", action="store_true", help="do not write curves.png")
    g.add_argument("--no-progress", action="store_true", help="plain lines instead of a progress bar")
    g.add_argument("--diagnostics", type=number(int, 1), nargs="?", const=1, metavar="K",
                   help="record gradient-flow diagnostics (per-layer gradient norms, update ratios, dead "
                   "and saturated units) on 256 training examples every K epochs (default 1): prints the "
                   "last table and writes diagnostics.png (a layers x epochs heatmap)")
    _add_common(p)
    p.set_defaults(run=_run_train)


def _run_train(args) -> int:
    return run_training(given_options(args), args.out or DEFAULT_OUT, resume=args.resume, overwrite=args.overwrite,
                        gradcheck=not args.no_gradcheck, plot=not args.no_plot, plain=args.no_progress,
                        diagnostics=args.diagnostics, cache=not args.no_cache and (args.cache_dir or True))


# --- predict and evaluate -------------------------------------------------------------


def _add_predict(sub) -> None:
    p = sub.add_parser("predict", help="predict with a saved network",
                       description="Predictions of a checkpoint written by `fnann train` for the "
                       "rows of a CSV/.npz file of features (no label column), standardized as in "
                       "training; class names and regression units are the training data's.")
    p.add_argument("checkpoint", help="checkpoint file (e.g. runs/fnann/checkpoint.npz)")
    p.add_argument("inputs", help="CSV (optional header) or .npz with an array x")
    p.add_argument("--output", help="write the predictions to this CSV file (default: print them)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    p.add_argument("--delimiter", type=parse_delimiter, help="column separator of a text file (default: detected)")
    _add_common(p)
    p.set_defaults(run=_run_predict)


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
    _cache(args)
    import numpy as np

    import fnann
    from fnann.app import datasets, metrics

    ck, wide = load_checkpoint(args.checkpoint)
    x = datasets.read_features(args.inputs, delimiter=args.delimiter)
    _check_features(x, ck.net, args.inputs)
    with x64(wide):
        x = standardize(x, ck.meta, "x")
        y_hat = np.asarray(fnann.predict(ck.net, ck.params, x, **with_stats(ck.net, ck.stats)))
    if ck.meta["task"] == "classification":
        classes = class_names(ck.meta, ck.net)
        prefix = "p_" if ck.net.output.head is not None else "score_"  # probabilities: a classifier's head
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
    p.add_argument("--delimiter", type=parse_delimiter, help="column separator of a text file (default: detected)")
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
    _cache(args)
    import numpy as np

    import fnann
    from fnann.app import datasets, metrics

    ck, wide = load_checkpoint(args.checkpoint)
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
            label = args.label if args.label is not None else (m.get("label") if is_file(m["data"]) else None)
            t = datasets.read_labelled(args.data, label=label_column(label), task=m["task"],
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
    with x64(wide):
        if classify:
            labels = _class_indices(y, classes, class_names(m, ck.net), source)
            result = fnann.evaluate(ck.net, ck.params, x, class_targets(labels, ck.net, loss), loss,
                                    **with_stats(ck.net, ck.stats))
            y_hat = np.asarray(fnann.predict(ck.net, ck.params, x, **with_stats(ck.net, ck.stats)))
            result["accuracy"] = float(np.mean(metrics.predicted_classes(y_hat) == labels))
            print(f"accuracy {result['accuracy']:.4f}  loss {result['loss']:.4f}  ({len(x)} examples)")
        else:
            result = fnann.evaluate(ck.net, ck.params, x, y, loss, **with_stats(ck.net, ck.stats))
            y_hat = np.asarray(fnann.predict(ck.net, ck.params, x, **with_stats(ck.net, ck.stats)))
            if m.get("target_mean") is not None:
                y_hat = y_hat * np.asarray(m["target_std"]) + np.asarray(m["target_mean"])
            rmse, r2 = metrics.rmse_r2(y_hat, y_units)
            print(f"RMSE {rmse:.4g}  R² {r2:.4f}  (original units)  loss {result['loss']:.4f} "
                  f"({loss.name}, standardized targets)  ({len(x)} examples)")
    return 0


def _file_digest_or_none(path: str):
    try:
        return file_digest(path)
    except OSError:
        return None


# --- gradcheck ------------------------------------------------------------------------


def _add_gradcheck(sub) -> None:
    p = sub.add_parser("gradcheck", help="verify the hand-derived gradients of a network",
                       description="Build a network, draw random data and compare the manual "
                       "gradients with jax.grad and central finite differences in float64.")
    p.add_argument("--sizes", type=parse_sizes, default=(64, 128, 64, 10),
                   help="layer widths, inputs first (default 64,128,64,10)")
    p.add_argument("--residual", action="store_true",
                   help="skip connections A^(l) = A^(l-1) + σ(Z^(l)) on every hidden layer as wide as its input")
    p.add_argument("--dropout", type=decay, default=0.0, metavar="P",
                   help="inverted dropout rate p in [0, 1) of every hidden layer: checks the training pass, "
                   "masks M ~ Bernoulli(1 - p) drawn from --seed (default 0: off)")
    p.add_argument("--norm", type=parse_norm, default="none", metavar="NAME[,NAME...]",
                   help="normalization of the hidden layers' pre-activations: layer, batch (checks the training "
                   "pass: the batch's statistics) or none, or one per hidden layer, comma-separated (default none)")
    p.add_argument("--hidden", default="relu", metavar="NAME[,NAME...]",
                   help="hidden activation: {activations}, or one per hidden layer, comma-separated (default relu)")
    p.add_argument("--output", default="softmax", metavar="NAME",
                   help="output activation: {activations} (default softmax)")
    p.add_argument("--loss", default="cross_entropy", metavar="NAME",
                   help="loss: {losses} (default cross_entropy)")
    p.add_argument("--batch", type=int, default=32, help="batch size of the random data (default 32)")
    p.add_argument("--n-fd", type=count, default=32,
                   help="entries per array checked by finite differences (0: all; default 32)")
    p.add_argument("--eps", type=positive, default=1e-6, help="finite-difference step (default 1e-6)")
    p.add_argument("--autodiff-rtol", type=number(float, 0), default=1e-10, metavar="RTOL",
                   help="tolerance vs jax.grad, relative to each array's max |gradient| (default 1e-10)")
    p.add_argument("--fd-rtol", type=number(float, 0), default=1e-6, metavar="RTOL",
                   help="tolerance vs finite differences, relative likewise (default 1e-6)")
    p.add_argument("--atol", type=number(float, 0), default=0.0,
                   help="absolute tolerance added to both (default 0: relative only)")
    p.add_argument("--seed", type=parse_seed, default=0, help="seed of the params and the data (default 0)")
    _add_common(p)
    p.set_defaults(run=_run_gradcheck)


def _run_gradcheck(args) -> int:
    if len(args.sizes) < 2:
        raise UsageError(f"--sizes needs at least two widths; got {','.join(map(str, args.sizes))}")
    if args.batch < 1:
        raise UsageError(f"--batch must be >= 1; got {args.batch}")
    _cache(args)
    import jax

    import fnann
    from fnann.losses import random_targets

    net = fnann.MLP(args.sizes, hidden=hidden_activations(args.hidden), output=args.output,
                    residual=args.residual, dropout=args.dropout, norm=norm_names(args.norm))
    if net.has_batch_norm and args.batch < 2:
        raise UsageError(f"--norm {net.norm_name}: batch norm's training pass needs --batch 2 or more; got {args.batch}")
    loss = fnann.get_loss(args.loss)
    k_init, k_x, k_y = jax.random.split(jax.random.key(args.seed), 3)
    k_drop = jax.random.fold_in(jax.random.key(args.seed), 1) if net.has_dropout else None
    params = fnann.init(k_init, net)
    x = jax.random.normal(k_x, (args.batch, net.n_in))
    y = random_targets(loss, k_y, args.batch, net.n_out, x.dtype)
    report = fnann.check_grads(net, loss, params, x, y, eps=args.eps, n_fd=args.n_fd or None,
                               autodiff_rtol=args.autodiff_rtol, fd_rtol=args.fd_rtol, atol=args.atol,
                               seed=args.seed, key=k_drop)
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
                       "gives) and one optimizer step with its state; with batch norm, a batch of --batch "
                       "examples and the running statistics' update. Negative values: --x=-0.5,1.")
    p.add_argument("--sizes", type=parse_sizes, default=(2, 3, 2), help="layer widths (default 2,3,2)")
    p.add_argument("--residual", action="store_true",
                   help="skip connections A^(l) = A^(l-1) + σ(Z^(l)) on every hidden layer as wide as its input")
    p.add_argument("--dropout", type=decay, default=0.0, metavar="P",
                   help="inverted dropout rate p in [0, 1) of every hidden layer: the training pass, with "
                   "masks M ~ Bernoulli(1 - p) drawn from --seed (default 0: off)")
    p.add_argument("--norm", type=parse_norm, default="none", metavar="NAME[,NAME...]",
                   help="normalization of the hidden layers' pre-activations: layer, batch or none, or one per "
                   "hidden layer, comma-separated (default none). With batch norm, explain follows a batch of "
                   "--batch examples (its statistics are the batch's)")
    p.add_argument("--batch", type=int, metavar="M", help="with batch norm: the batch of M >= 2 examples "
                   "explained (default 4; --x and --y give M rows, one after the other); without it, one example")
    p.add_argument("--hidden", default="sigmoid", metavar="NAME[,NAME...]", help="hidden activation: "
                   "{activations}, or one per hidden layer, comma-separated (default sigmoid)")
    p.add_argument("--output", default="softmax", help="output activation (default softmax)")
    p.add_argument("--loss", help="default: cross_entropy for softmax, binary_cross_entropy for sigmoid, "
                   "mse otherwise")
    p.add_argument("--x", type=_floats, help="the example's inputs, e.g. --x=0.5,-1 (default: drawn from --seed)")
    p.add_argument("--y", type=_floats, help="its target: a class label (cross_entropy) or one value per "
                   "output (default: drawn from --seed)")
    p.add_argument("--seed", type=parse_seed, default=0, help="seed of the parameters (and of x, y if not given)")
    p.add_argument("--optimizer", default="sgd", choices=OPTIMIZERS, help="the step shown at the end (default sgd)")
    p.add_argument("--lr", type=positive, help="learning rate (default: {default_lrs})")
    p.add_argument("--textbook", action="store_true", help="delta^(L) by the chain dL/dA then sigma', even "
                   "where the fused A - y applies")
    p.add_argument("--format", choices=("text", "markdown"), default="text")
    _add_common(p)
    p.set_defaults(run=_run_explain)


def _run_explain(args) -> int:
    _cache(args)
    from fnann.app.explain import run_cli

    lr = args.lr if args.lr is not None else optimizer_factory(args.optimizer).default_lr
    opts = TrainOptions(optimizer=args.optimizer, lr=lr, weight_decay=0.0)
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
