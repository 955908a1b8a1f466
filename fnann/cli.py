"""The ``fnann`` command line.

    fnann train       train and verify a network on a bundled dataset or your own file
    fnann predict     predictions of a saved network for new inputs
    fnann evaluate    loss and accuracy of a saved network on a dataset
    fnann gradcheck   verify the hand-derived gradients of a network
    fnann explain     every equation of backprop with its numbers, for a tiny network

Bad options and bad data end with one line ``fnann <command>: error: ...`` and exit
status 2; a failed gradient check exits with 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

OPTIMIZERS = ("adam", "sgd", "momentum", "rmsprop")
DEFAULT_LR = {"adam": 1e-3, "sgd": 0.1, "momentum": 0.01, "rmsprop": 1e-3}


class UsageError(Exception):
    """A bad option or input, reported as one line with exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error on one line (exit status 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"malformed sizes {text!r}: give widths like 128,64") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"malformed sizes {text!r}: widths must be integers >= 1")
    return sizes


def _batch_size(text: str):
    if text.lower() in ("full", "none", "n"):
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"batch size must be an integer >= 1 or 'full'; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"batch size must be an integer >= 1 or 'full'; got {value}")
    return value


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number; got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0; got {text}")
        return value
    return parse


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


# --- data -----------------------------------------------------------------------------


def load_data(name: str, *, label: str | None, test_size: float, seed: int,
              standardize: bool = True):
    """A bundled/synthetic dataset by name, or the user's CSV/.npz file."""
    from fnann import datasets

    if name in datasets.NAMES:
        return datasets.load(name, test_size=test_size, seed=seed, standardize=standardize)
    if os.path.exists(name) or name.endswith((".csv", ".npz", ".txt", ".tsv")):
        col: int | str = -1
        if label is not None:
            col = int(label) if label.lstrip("-").isdigit() else label
        return datasets.load_file(name, label=col, test_size=test_size, seed=seed,
                                  standardize=standardize,
                                  delimiter="\t" if name.endswith(".tsv") else ",")
    raise UsageError(f"unknown dataset {name!r}: use one of {', '.join(datasets.NAMES)} "
                     "or the path of a .csv/.npz file")


def _validation_split(data, size: float, seed: int):
    """Carves a validation set out of the training split (stratified for classification)."""
    from fnann import datasets

    labels = data.y_train if data.task == "classification" else None
    train, val = datasets._split(labels, len(data.x_train), size, seed + 1)
    return (data.x_train[train], data.y_train[train]), (data.x_train[val], data.y_train[val])


# --- train ----------------------------------------------------------------------------


def _add_train(sub) -> None:
    p = sub.add_parser(
        "train", help="train and verify a network (default: 64-128-64-10 on digits)",
        description="Train an MLP with hand-derived gradients (verified against autodiff at the "
        "start), report test accuracy, save a checkpoint and a plot of the curves.")
    p.add_argument("--data", default="digits", help="bundled/synthetic dataset name (digits, iris, "
                   "breast_cancer, wine, diabetes, xor, spirals, sine) or a .csv/.npz file")
    p.add_argument("--label", help="label column of a CSV file: index or header name (default: last)")
    p.add_argument("--hidden-sizes", type=_sizes, default=(128, 64),
                   help="hidden layer widths (default 128,64: the 64-128-64-10 network on digits)")
    p.add_argument("--hidden", default="relu", help="hidden activation (default relu)")
    p.add_argument("--output", help="output activation (default softmax, identity for regression)")
    p.add_argument("--loss", help="loss (default cross_entropy, mse for regression)")
    p.add_argument("--optimizer", default="adam", choices=OPTIMIZERS)
    p.add_argument("--lr", type=_positive(float), help="learning rate (default: adam 1e-3, sgd "
                   "0.1, momentum 0.01, rmsprop 1e-3)")
    p.add_argument("--gamma", type=float, default=0.9, help="momentum coefficient")
    p.add_argument("--beta", type=float, default=0.9, help="RMSProp decay")
    p.add_argument("--b1", type=float, default=0.9, help="Adam first-moment decay")
    p.add_argument("--b2", type=float, default=0.999, help="Adam second-moment decay")
    p.add_argument("--eps", type=_positive(float), default=1e-8, help="RMSProp/Adam epsilon")
    p.add_argument("--clip", type=_positive(float), help="clip gradients to this global norm")
    p.add_argument("--weight-decay", type=float, default=1e-3,
                   help="L2 penalty lambda: adds lambda*theta to the gradient (default 1e-3; 0: off)")
    p.add_argument("--epochs", type=int, default=60, help="epochs (default 60)")
    p.add_argument("--batch-size", type=_batch_size, default=32,
                   help="1 (SGD), an integer (mini-batches) or 'full' (default 32)")
    p.add_argument("--val-size", type=float, default=0.1,
                   help="fraction of the training split held out for validation (default 0.1)")
    p.add_argument("--test-size", type=float, default=0.2, help="fraction held out for testing")
    p.add_argument("--patience", type=int, help="stop after this many epochs without a better "
                   "validation loss, and keep the best params")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--method", choices=("manual", "autodiff"), default="manual",
                   help="gradients by the hand-derived backward pass or by jax.grad")
    p.add_argument("--out", default="runs/fnann", help="output folder (default runs/fnann)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument("--overwrite", action="store_true", help="replace an existing checkpoint")
    p.add_argument("--no-gradcheck", action="store_true", help="skip the gradient check at start")
    p.add_argument("--no-plot", action="store_true", help="do not write curves.png")
    p.add_argument("--no-progress", action="store_true", help="plain lines instead of a progress bar")
    p.add_argument("--diagnostics", type=_positive(int), nargs="?", const=1, metavar="K",
                   help="record gradient-flow diagnostics (per-layer gradient norms, update ratios, dead "
                   "and saturated units) on 256 training examples every K epochs (default 1): prints the "
                   "last table and writes diagnostics.png (a layers x epochs heatmap)")
    _add_common(p)
    p.set_defaults(run=_run_train)


def build_optimizer(args):
    import fnann

    lr = args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]
    opt = {"adam": lambda: fnann.adam(lr, b1=args.b1, b2=args.b2, eps=args.eps),
           "sgd": lambda: fnann.sgd(lr),
           "momentum": lambda: fnann.momentum(lr, gamma=args.gamma),
           "rmsprop": lambda: fnann.rmsprop(lr, beta=args.beta, eps=args.eps)}[args.optimizer]()
    if args.weight_decay < 0:
        raise UsageError(f"--weight-decay must be >= 0; got {args.weight_decay}")
    steps = ([fnann.clip_by_global_norm(args.clip)] if args.clip else []) + (
        [fnann.add_decayed_weights(args.weight_decay)] if args.weight_decay else [])
    return fnann.chain(*steps, opt) if steps else opt


class Progress:
    """One progress bar (tqdm, on a terminal) or one plain line per epoch."""

    def __init__(self, total: int, first: int, plain: bool):
        self.bar = None
        if not plain and sys.stderr.isatty():
            try:
                from tqdm.auto import tqdm
                self.bar = tqdm(total=total, initial=0, unit="epoch", desc="training")
            except ImportError:
                pass
        self.total, self.first = total, first

    def __call__(self, epoch: int, logs: dict) -> None:
        shown = {"loss": logs["loss"]}
        for k in ("val_loss", "val_accuracy"):
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


def _run_train(args) -> int:
    start = time.perf_counter()
    if args.epochs < 0:
        raise UsageError(f"--epochs must be >= 0; got {args.epochs}")
    if not 0 < args.val_size < 1:
        raise UsageError(f"--val-size must be in (0, 1); got {args.val_size}")
    out = Path(args.out)
    ckpt_path = out / "checkpoint.npz"
    if ckpt_path.exists() and not (args.resume or args.overwrite):
        raise UsageError(f"{ckpt_path} exists: pass --resume to continue it or --overwrite to replace it")
    if args.resume and not ckpt_path.exists():
        raise UsageError(f"--resume: no checkpoint at {ckpt_path}")
    enable_compilation_cache(args)
    import jax
    import numpy as np

    import fnann

    data = load_data(args.data, label=args.label, test_size=args.test_size, seed=args.seed)
    classify = data.task == "classification"
    (x_tr, y_tr), (x_val, y_val) = _validation_split(data, args.val_size, args.seed)
    net = fnann.MLP((data.n_features, *args.hidden_sizes, data.n_outputs), hidden=args.hidden,
                    output=args.output or ("softmax" if classify else "identity"))
    loss = fnann.get_loss(args.loss or ("cross_entropy" if classify else "mse"))
    opt = build_optimizer(args)
    k_init, k_fit = jax.random.split(jax.random.key(args.seed))
    params, opt_state, first, history = fnann.init(k_init, net), None, 0, {}
    if args.resume:
        ck = fnann.load(ckpt_path, net=net)
        params, opt_state, first, k_fit, history = ck.params, ck.opt_state, ck.epoch, ck.key, ck.history
    print(f"fnann train: {data.name} ({len(x_tr)} train / {len(x_val)} validation / "
          f"{len(data.x_test)} test), {net}, loss {loss.name}, {args.optimizer}"
          f"{f' + L2 {args.weight_decay:g}' if args.weight_decay else ''}, "
          f"batch {args.batch_size or 'full'}, {args.method} gradients")
    if not args.no_gradcheck:
        report = fnann.check_grads(net, loss, params, x_tr[:16], y_tr[:16], n_fd=8, seed=args.seed)
        print(report.summary())
        if not report.passed:
            print(report)
            return 1
    recorder = None
    if args.diagnostics:
        recorder = fnann.diagnostics.Recorder(net, loss, x_tr[:256], y_tr[:256], opt, every=args.diagnostics)
        recorder.record(first, params, opt_state)
    progress = Progress(args.epochs, first, args.no_progress)
    try:
        params, new_history, state = fnann.fit(
            net, loss, opt, params, x_tr, y_tr, key=k_fit, epochs=args.epochs,
            batch_size=args.batch_size, method=args.method, validation_data=(x_val, y_val),
            opt_state=opt_state, initial_epoch=first, patience=args.patience,
            callback=progress, return_state=True, params_callback=recorder)
    finally:
        progress.close()
    if recorder is not None:
        print(f"gradient flow after epoch {recorder.epochs[-1]} ({len(recorder.x)} training examples):\n"
              + fnann.diagnostics.format_diagnostics(recorder.records[-1], net))
    history = {k: list(history.get(k, [])) + v for k, v in new_history.items()}
    test = fnann.evaluate(net, params, data.x_test, data.y_test, loss)
    if classify:
        print(f"test accuracy {test['accuracy']:.4f}  test loss {test['loss']:.4f}")
    else:
        print(f"test loss ({loss.name}, standardized targets) {test['loss']:.4f}")
    meta = {"data": args.data, "task": data.task, "test_size": args.test_size, "seed": args.seed,
            "label": args.label, "loss": loss.name, "optimizer": args.optimizer,
            "classes": list(map(str, data.classes)) if data.classes else None,
            "test": test}
    for field in ("x_mean", "x_std", "target_mean", "target_std"):
        value = getattr(data, field)
        meta[field] = None if value is None else np.asarray(value).tolist()
    fnann.save(ckpt_path, net, params, state.opt_state, epoch=state.epoch, key=state.key,
               history=history, meta=meta)
    print(f"saved {ckpt_path}")
    if not args.no_plot and history.get("loss"):
        try:
            from fnann.plots import plot_history
            print(f"saved {plot_history(history, out / 'curves.png', title=f'{net} on {data.name}')}")
            if recorder is not None:
                from fnann.diagnostics_plots import plot_heatmap
                heatmap = plot_heatmap(recorder.epochs, recorder.stacked(), out / "diagnostics.png",
                                       title=f"{net} on {data.name}")
                print(f"saved {heatmap}")
        except ImportError as e:
            print(f"no plot: {e}")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0


# --- predict and evaluate -------------------------------------------------------------


def _load_checkpoint(path: str):
    import fnann

    ck = fnann.load(path)
    if not ck.meta or "task" not in ck.meta:
        raise UsageError(f"{path} was not written by `fnann train` (no dataset information)")
    return ck


def _add_predict(sub) -> None:
    p = sub.add_parser("predict", help="predict with a saved network",
                       description="Predictions of a checkpoint written by `fnann train` for the "
                       "rows of a CSV/.npz file of features (no label column), standardized as in training.")
    p.add_argument("checkpoint", help="checkpoint file (e.g. runs/fnann/checkpoint.npz)")
    p.add_argument("inputs", help="CSV (optional header) or .npz with an array x")
    p.add_argument("--output", help="write the predictions to this CSV file (default: print)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    _add_common(p)
    p.set_defaults(run=_run_predict)


def standardize(values, meta: dict, prefix: str):
    """(v - mean) / std with the training statistics a checkpoint's meta holds, if any."""
    import numpy as np

    if meta.get(f"{prefix}_mean") is None:
        return values
    mean, std = (np.asarray(meta[f"{prefix}_{k}"], np.float32) for k in ("mean", "std"))
    return (values - mean) / std


def _run_predict(args) -> int:
    if args.output and os.path.exists(args.output) and not args.overwrite:
        raise UsageError(f"{args.output} exists; pass --overwrite to replace it")
    enable_compilation_cache(args)
    import numpy as np

    import fnann
    from fnann import datasets

    ck = _load_checkpoint(args.checkpoint)
    x = datasets.read_features(args.inputs)
    if x.shape[1] != ck.net.n_in:
        raise UsageError(f"{args.inputs} has {x.shape[1]} feature columns but the network takes {ck.net.n_in}")
    x = standardize(x, ck.meta, "x")
    y_hat = np.asarray(fnann.predict(ck.net, ck.params, x))
    if ck.meta["task"] == "classification":
        classes = ck.meta.get("classes") or [str(i) for i in range(ck.net.n_out)]
        pred = np.argmax(y_hat, axis=1) if y_hat.shape[1] > 1 else (y_hat[:, 0] > 0.5).astype(int)
        lines = ["prediction," + ",".join(f"p_{c}" for c in classes)]
        lines += [f"{classes[k]}," + ",".join(f"{v:.6g}" for v in row) for k, row in zip(pred, y_hat)]
    else:
        if ck.meta.get("target_mean") is not None:
            y_hat = y_hat * np.asarray(ck.meta["target_std"]) + np.asarray(ck.meta["target_mean"])
        lines = [",".join(f"y{j}" for j in range(y_hat.shape[1]))]
        lines += [",".join(f"{v:.6g}" for v in row) for row in y_hat]
    text = "\n".join(lines) + "\n"
    if args.output:
        from fnann.checkpoint import atomic_write
        atomic_write(args.output, text.encode())
        print(f"wrote {len(y_hat)} predictions to {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="loss and accuracy of a saved network",
                       description="Evaluate a checkpoint written by `fnann train` on the test "
                       "split of its dataset (default) or on another labelled dataset/file.")
    p.add_argument("checkpoint", help="checkpoint file (e.g. runs/fnann/checkpoint.npz)")
    p.add_argument("--data", help="dataset name or labelled .csv/.npz (default: the training "
                   "dataset's test split)")
    p.add_argument("--label", help="label column of a CSV file")
    _add_common(p)
    p.set_defaults(run=_run_evaluate)


def _run_evaluate(args) -> int:
    enable_compilation_cache(args)
    import fnann

    ck = _load_checkpoint(args.checkpoint)
    m = ck.meta
    if args.data is None:
        data = load_data(m["data"], label=m.get("label"), test_size=m["test_size"], seed=m["seed"])
        x, y = data.x_test, data.y_test
    else:  # every row of another dataset, standardized with the training statistics
        import numpy as np

        data = load_data(args.data, label=args.label, test_size=0.5, seed=0, standardize=False)
        x = np.concatenate([data.x_train, data.x_test])
        y = np.concatenate([data.y_train, data.y_test])
        x, y = standardize(x, m, "x"), standardize(y, m, "target")
        if x.shape[1] != ck.net.n_in:
            raise UsageError(f"{args.data} has {x.shape[1]} features but the network takes {ck.net.n_in}")
    result = fnann.evaluate(ck.net, ck.params, x, y, m["loss"])
    print("  ".join(f"{k} {v:.4f}" for k, v in result.items()) + f"  ({len(x)} examples)")
    return 0


# --- gradcheck ------------------------------------------------------------------------


def _add_gradcheck(sub) -> None:
    p = sub.add_parser("gradcheck", help="verify the hand-derived gradients of a network",
                       description="Build a network, draw random data and compare the manual "
                       "gradients with jax.grad and central finite differences in float64.")
    p.add_argument("--sizes", type=_sizes, default=(64, 128, 64, 10),
                   help="layer widths, inputs first (default 64,128,64,10)")
    p.add_argument("--hidden", default="relu", help="hidden activation (default relu)")
    p.add_argument("--output", default="softmax", help="output activation (default softmax)")
    p.add_argument("--loss", default="cross_entropy", help="loss (default cross_entropy)")
    p.add_argument("--batch", type=int, default=32, help="batch size of the random data")
    p.add_argument("--n-fd", type=int, default=32,
                   help="entries per array checked by finite differences (0: all)")
    p.add_argument("--seed", type=int, default=0)
    _add_common(p)
    p.set_defaults(run=_run_gradcheck)


def _run_gradcheck(args) -> int:
    if len(args.sizes) < 2:
        raise UsageError(f"--sizes needs at least two widths; got {args.sizes}")
    if args.batch < 1:
        raise UsageError(f"--batch must be >= 1; got {args.batch}")
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
    p.add_argument("--hidden", default="sigmoid", help="hidden activation (default sigmoid)")
    p.add_argument("--output", default="softmax", help="output activation (default softmax)")
    p.add_argument("--loss", help="default: cross_entropy for softmax, binary_cross_entropy for sigmoid, "
                   "mse otherwise")
    p.add_argument("--x", type=_floats, help="the example's inputs, e.g. --x=0.5,-1 (default: drawn from --seed)")
    p.add_argument("--y", type=_floats, help="its target: a class label (cross_entropy) or one value per "
                   "output (default: drawn from --seed)")
    p.add_argument("--seed", type=int, default=0, help="seed of the parameters (and of x, y if not given)")
    p.add_argument("--optimizer", default="sgd", choices=OPTIMIZERS, help="the step shown at the end")
    p.add_argument("--lr", type=_positive(float), help="learning rate (default: adam 1e-3, sgd 0.1, "
                   "momentum 0.01, rmsprop 1e-3)")
    p.add_argument("--textbook", action="store_true", help="delta^(L) by the chain dL/dA then sigma', even "
                   "where the fused A - y applies")
    p.add_argument("--format", choices=("text", "markdown"), default="text")
    _add_common(p)
    p.set_defaults(run=_run_explain, gamma=0.9, beta=0.9, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0,
                   clip=None)


def _run_explain(args) -> int:
    enable_compilation_cache(args)
    from fnann.explain import run_cli

    lr = args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]
    print(run_cli(args, build_optimizer(args), f"{args.optimizer}(lr={lr:g})"), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fnann", description="The textbook feed-forward network in JAX, with "
                     "hand-derived backprop verified against autodiff.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    _add_train(sub)
    _add_predict(sub)
    _add_evaluate(sub)
    _add_gradcheck(sub)
    _add_explain(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fnann`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (UsageError, ValueError, TypeError, FileNotFoundError, FileExistsError, ImportError) as e:
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"fnann {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fnann {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
