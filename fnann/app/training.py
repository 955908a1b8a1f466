"""``fnann train`` as a function, `run_training`: load the data, build the network, loss and
optimizer, check the gradients, fit, evaluate, and save the checkpoint, history.csv and the
curves in the run folder.

The run holds the folder's lock throughout; the plotting helper starts before JAX is imported
(matplotlib loads on another core meanwhile) and the epoch compiles on a second thread while
the gradients are checked (`compiling_ahead`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fnann.app.common import UsageError, class_targets, enable_compilation_cache, file_digest, is_file, \
    load_checkpoint, load_data, validation_split, with_stats, x64
from fnann.app.options import OVER_THE_RUN, TrainOptions, given_options, hidden_activations, hyperparameters, \
    norm_names, optimizer_factory, run_record, train_options
from fnann.app.runner import Progress, compiling_ahead, plot_curves, plotter, run_folder, run_keys

DEFAULT_OUT = "runs/fnann"
RUN_FILES = ("checkpoint.npz", "history.csv", "curves.png", "diagnostics.png", "diverged.npz")
"""The files a run writes in its folder: none is replaced without --overwrite (or --resume)."""


def run_training(opts: TrainOptions | Mapping[str, Any] = TrainOptions(), out: str | os.PathLike = DEFAULT_OUT, *,
                 resume: bool = False, overwrite: bool = False, gradcheck: bool = True, plot: bool = True,
                 plain: bool = False, diagnostics: int | None = None, cache: bool | str | os.PathLike = False) -> int:
    """Trains as ``fnann train`` does; returns its exit status (1: the gradient check failed).

    ``opts``: the options given, a `TrainOptions` or ``{field: value}``; with ``resume`` the
    ones left out (a TrainOptions' fields at their defaults) are the recorded run's. ``plain``:
    one line per epoch, no progress bar. ``diagnostics``: gradient-flow records every that many
    epochs. ``cache``: JAX's compilation cache off, in its default folder (True) or in this one.

    Raises:
      UsageError: a bad option or input, a resume that would change the run, a diverged run.
    """
    start = time.perf_counter()
    out = Path(out)
    ckpt = out / "checkpoint.npz"
    _check_folder(out, ckpt, resume, overwrite)
    recorded, done = _recorded_run(ckpt) if resume else (None, 0)
    given = given_options(opts)
    opts, notes = train_options(given, recorded)
    wide = opts.dtype == "float64"
    with run_folder(out), plotter(plot) as helper:
        _refuse_existing(out, resume, overwrite)  # another run may have just written them
        if cache:
            enable_compilation_cache(None if cache is True else cache)
        with x64(wide), compiling_ahead(wide) as ahead:
            run = _build(opts, given, recorded, done)
            compiled = _compile_ahead(run, ahead)
            params, stats, opt_state, first, key, history = _start(run, ckpt if recorded is not None else None)
            for note in notes:
                print(note)
            print(_headline(run) + (f", from epoch {first}" if recorded is not None else ""))
            if gradcheck and not _gradients_pass(run, params):
                return 1
            recorder = _recorder(run, diagnostics, first, params, opt_state)
            compiled[0].result()
            params, stats, history, state, best_epoch = _fit(run, params, stats, opt_state, first, key, history,
                                                             recorder, plain, out, resumed=recorded is not None)
            compiled[1].result()
            title, test = _evaluate(run, params, stats)
            curves = (plot_curves(helper, history, out / "curves.png", title, best_epoch)
                      if plot and history.get("loss") else None)  # drawn while the files are written
            _save(run, out, params, stats, state, history, _meta(run, test=test))
            if curves is not None:
                _show_plots(curves, recorder, out, title)
            print(f"done in {time.perf_counter() - start:.1f} s")
            return 0


def _check_folder(out: Path, ckpt: Path, resume: bool, overwrite: bool) -> None:
    if resume and overwrite:
        raise UsageError("--resume continues the checkpoint and --overwrite replaces it: pass one of them")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    _refuse_existing(out, resume, overwrite)
    if resume and not ckpt.exists():
        raise UsageError(f"--resume: no checkpoint at {ckpt}")


def _refuse_existing(out: Path, resume: bool, overwrite: bool) -> None:
    """Every file a run writes is guarded alike: an earlier run's (or a link in its place) is
    replaced only when asked, by --overwrite, or continued by --resume."""
    if resume or overwrite:
        return
    present = [name for name in RUN_FILES if os.path.lexists(out / name)]
    if present:
        what = ", ".join(present)
        continue_it = "--resume to continue it or " if "checkpoint.npz" in present else ""
        raise UsageError(f"{out} holds {what} from an earlier run: "
                         f"pass {continue_it}--overwrite to replace {'it' if len(present) == 1 else 'them'}, "
                         "or choose another --out")


def _recorded_run(ckpt: Path) -> tuple[dict, int]:
    """``(the options the checkpoint's run recorded, its epochs done)``, read first: they say
    which options the run has."""
    ck = load_checkpoint(str(ckpt))[0]
    recorded = ck.meta.get("run")
    if not recorded:
        raise UsageError(f"{ckpt} holds no record of its run's options (an older fnann wrote it), "
                         "so --resume cannot check that it continues the same run; start anew with --overwrite")
    return recorded, ck.epoch


@dataclasses.dataclass(frozen=True)
class Run:
    """A run's options (task, output, loss and lr resolved), data, network, loss and optimizer;
    ``train``, ``val``, ``test``: ``(x, targets)`` of its splits; ``batch``: fit's batch size
    (None: the full batch); ``record``: ``meta["run"]``."""

    opts: TrainOptions
    data: Any
    net: Any
    loss: Any
    opt: Any
    train: tuple
    val: tuple
    test: tuple
    batch: int | None
    record: dict

    @property
    def classify(self) -> bool:
        return self.data.task == "classification"

    @property
    def show_accuracy(self) -> bool:
        """Accuracy in the progress; not for k > 1 units of a binary head (fit's is per unit there)."""
        return self.classify and not (self.net.output.head == "binary" and self.net.n_out > 1)


def _build(opts: TrainOptions, given: dict, recorded: dict | None, done: int) -> Run:
    """Reads the data, then builds the network, loss and optimizer the options and data ask for."""
    data, digest = _read(opts, given, recorded)
    opts, net, loss = _network(opts, data)
    (x_tr, y_tr), (x_val, y_val) = validation_split(data, opts.val_size, opts.seed)
    batch = None if opts.batch_size == "full" else opts.batch_size
    steps_per_epoch = max(1, math.ceil(len(x_tr) / min(batch or len(x_tr), len(x_tr))))
    epochs, planned = run_length(opts, given, recorded, done, steps_per_epoch)
    opts = dataclasses.replace(opts, epochs=epochs)
    schedule_steps = (recorded or {}).get("schedule_steps") or max(1, planned * steps_per_epoch)
    opt = build_optimizer(opts, steps_per_epoch, schedule_steps)

    def targets(y):
        return class_targets(y, net, loss) if data.task == "classification" else y

    return Run(opts, data, net, loss, opt, (x_tr, targets(y_tr)), (x_val, targets(y_val)),
               (data.x_test, targets(data.y_test)), batch,
               run_record(opts, schedule_steps=schedule_steps, run_epochs=planned, data_sha256=digest))


def run_length(opts: TrainOptions, given: dict, recorded: dict | None, done: int,
               steps_per_epoch: int) -> tuple[int, int]:
    """``(epochs to train now, the run's planned length in epochs)``.

    A run is planned for its first ``--epochs``, and its schedule spans exactly that many
    epochs. ``--resume`` continues to the planned end (a run killed half-way, or stopped early,
    then ends as the unbroken run would), or trains the ``--epochs`` given. Past the planned end
    a constant or warmup schedule simply goes on (the plan grows); a schedule the run's length
    shapes (`OVER_THE_RUN`: cosine, exponential, warmup_cosine) has ended there, so going past
    it is refused: it would train at the schedule's final lr (0 for cosine).
    """
    if recorded is None:
        return opts.epochs, opts.epochs
    planned = recorded.get("run_epochs") or max(done, recorded.get("schedule_steps", 0) // steps_per_epoch, 1)
    ends = opts.schedule in OVER_THE_RUN
    if "epochs" not in given and done >= planned:
        raise UsageError(f"--resume: the run has trained all {planned} of its planned epochs"
                         + (f" and its {opts.schedule} schedule has ended; start a new run with a larger --epochs "
                            "(--overwrite or another --out)" if ends else "; pass --epochs K to train K more"))
    epochs = given.get("epochs", planned - done)
    if ends and done + epochs > planned:
        fits = (f"pass --epochs {planned - done} or fewer, or " if done < planned else "")
        raise UsageError(f"--resume --epochs {epochs} would train to epoch {done + epochs}, past the end of the "
                         f"run's {opts.schedule} schedule at epoch {planned} (the first run's --epochs); "
                         f"{fits}start a new run with --epochs {done + epochs} (--overwrite or another --out)")
    return epochs, max(planned, done + epochs)


def _network(opts: TrainOptions, data):
    """``(options, network, loss)``, the options with the task, output, loss, lr and the data's path
    filled in. Left out: the output is the one a given loss needs (binary cross-entropy: sigmoid),
    else softmax for classification, identity for regression; the loss goes with the output
    (`default_loss`) for classification, else mse; lr is the optimizer's ``default_lr``."""
    import fnann
    from fnann.losses import default_loss

    classify = data.task == "classification"
    output = opts.output
    if output is None:
        needs = getattr(fnann.LOSSES.get(opts.loss), "output", None)
        output = (needs.name if needs is not None else "softmax") if classify else "identity"
    n_out = _n_outputs(data.n_classes, fnann.ACTIVATIONS.get(output)) if classify else data.n_outputs
    net = fnann.MLP((data.n_features, *opts.hidden_sizes, n_out), hidden=hidden_activations(opts.hidden),
                     output=output, residual=opts.residual, dropout=opts.dropout, norm=norm_names(opts.norm))
    loss = fnann.get_loss(opts.loss) if opts.loss is not None else (
        default_loss(net.output) if classify else fnann.mse)
    lr = opts.lr if opts.lr is not None else optimizer_factory(opts.optimizer).default_lr
    opts = dataclasses.replace(opts, task=data.task, output=output, loss=loss.name, lr=lr,
                               data=os.path.abspath(opts.data) if is_file(opts.data) else opts.data)
    return opts, net, loss


def _read(opts: TrainOptions, given: dict, recorded: dict | None):
    """``(data, SHA-256 of the file or None)``; says which task the run is and why."""
    data = load_data(opts.data, label=opts.label, test_size=opts.test_size, seed=opts.seed, task=opts.task,
                     delimiter=opts.delimiter, dtype=opts.dtype)
    own = is_file(opts.data)
    digest = file_digest(opts.data) if own else None
    if recorded is not None and recorded.get("data_sha256") != digest:
        raise UsageError(f"--resume: {opts.data} changed since the checkpoint was written (its SHA-256 "
                         "differs), so the splits would not be the run's; start anew with --overwrite")
    if given.get("task", "auto") != "auto":
        print(f"task {data.task} (--task)")
    elif recorded is not None:
        print(f"task {data.task} (the recorded run's)")
    else:
        other = "regression" if data.task == "classification" else "classification"
        print(f"task {data.task}: {data.task_reason}" + (f"; --task {other} overrides it" if own else ""))
    return data, digest


def _n_outputs(n_classes: int, output) -> int:
    """Two classes on a binary head (sigmoid): one unit, P(class 1). Otherwise one unit per class."""
    return 1 if n_classes == 2 and output is not None and output.head == "binary" else n_classes


def build_optimizer(opts: TrainOptions | Mapping[str, Any], steps_per_epoch: int, schedule_steps: int):
    """The optimizer of a run: clip, then L2 (or AdamW's decoupled decay), then the optimizer with its
    learning-rate schedule. The optimizer takes each option named in its factory's signature."""
    import fnann
    from fnann.optim import schedules

    o = opts if isinstance(opts, TrainOptions) else TrainOptions(**opts)
    warmup = o.warmup_epochs * steps_per_epoch
    if o.schedule == "warmup_cosine" and warmup >= schedule_steps:
        raise UsageError(f"--warmup-epochs {o.warmup_epochs} leaves no epoch to decay over in a run "
                         f"of {schedule_steps // steps_per_epoch} epochs")
    rate = {
        "constant": lambda: o.lr,
        "cosine": lambda: schedules.cosine_decay(o.lr, schedule_steps),
        "exponential": lambda: schedules.exponential_decay(o.lr, o.decay_rate, schedule_steps),
        "warmup": lambda: schedules.linear_warmup(0.0, o.lr, warmup) if warmup else o.lr,
        "warmup_cosine": lambda: schedules.warmup_cosine_decay(o.lr, warmup, schedule_steps),
    }[o.schedule]()
    factory = optimizer_factory(o.optimizer)
    hyper = {k: getattr(o, k) for k in hyperparameters(factory)}
    if o.decoupled and factory is not fnann.adam:
        raise UsageError(f"--decoupled is AdamW and needs --optimizer adam; got {o.optimizer}")
    opt = fnann.adamw(rate, **hyper, weight_decay=o.weight_decay, mask=fnann.weights_only) if o.decoupled \
        else factory(rate, **hyper)
    steps = ([fnann.clip_by_global_norm(o.clip)] if o.clip else []) + (
        [fnann.add_decayed_weights(o.weight_decay)] if o.weight_decay and not o.decoupled else [])
    return fnann.chain(*steps, opt) if steps else opt


def describe(net) -> str:
    """``64-128-64-10 relu/softmax``: a readable name for a network (``, batch norm`` with one)."""
    return f"{'-'.join(map(str, net.sizes))} {net.hidden_name}/{net.output.name}" + (
        f", skips at layers {','.join(map(str, net.residual))}" if net.residual else "") + (
        f", dropout {','.join(f'{p:g}' for p in net.dropout_rates)}" if net.has_dropout else "") + (
        f", {net.norm_name} norm" if net.has_norm else "")


def describe_optimizer(o: TrainOptions) -> str:
    """``adam lr 0.001 (cosine schedule) + L2 0.001, clip 1``."""
    text = f"{o.optimizer} lr {o.lr:g}"
    if o.schedule != "constant":
        text += f" ({o.schedule} schedule)"
    if o.weight_decay:
        text += f" + {'decoupled' if o.decoupled else 'L2'} {o.weight_decay:g}"
    if o.clip:
        text += f", clip {o.clip:g}"
    return text


def _headline(run: Run) -> str:
    o = run.opts
    return (f"fnann train: {run.data.name} ({len(run.train[0])} train / {len(run.val[0])} validation / "
            f"{len(run.test[0])} test), {describe(run.net)}, loss {run.loss.name}, {describe_optimizer(o)}, "
            f"batch {o.batch_size}, {o.method} gradients, {o.dtype}"
            + (f" params, {o.compute_dtype} compute" if o.compute_dtype else ""))


def _compile_ahead(run: Run, ahead):
    """Compiles the epoch and the test evaluation on the second thread, from the shapes alone
    (a batch-norm net's running statistics too), while this one draws the params and checks
    the gradients; their futures."""
    import jax
    import numpy as np

    import fnann

    key_shape = jax.eval_shape(run_keys(), run.opts.seed)[1]
    dtype = np.dtype(run.opts.dtype)
    param_shapes = jax.eval_shape(lambda k: fnann.init(k, run.net, dtype=dtype), key_shape)
    stat_shapes = jax.eval_shape(lambda: fnann.init_stats(run.net, dtype))
    fit = ahead(fnann.train.compile_fit, run.net, run.loss, run.opt, param_shapes, *run.train, batch_size=run.batch,
                method=run.opts.method, validation_data=run.val, key=key_shape, compute_dtype=run.opts.compute_dtype,
                **with_stats(run.net, stat_shapes))
    return fit, ahead(fnann.inference.compile_inference, run.net, param_shapes, *run.test, run.loss,
                      **with_stats(run.net, stat_shapes))


def _start(run: Run, ckpt: Path | None):
    """``(params, stats, opt_state, first epoch, key, history)``: fresh from the seed, or the
    checkpoint's; ``stats``: batch norm's running statistics (``()`` for a net without)."""
    import numpy as np

    import fnann

    k_init, k_fit = run_keys()(run.opts.seed)
    params = fnann.init(k_init, run.net, dtype=np.dtype(run.opts.dtype))
    if not ckpt:
        return params, fnann.init_stats(run.net, np.dtype(run.opts.dtype)), None, 0, k_fit, {}
    ck = fnann.load(ckpt, net=run.net)  # a changed --compute-dtype adds or drops the loss scale:
    return (ck.params, ck.stats, fnann.optim.state_for(ck.opt_state, run.opts.compute_dtype), ck.epoch, ck.key,
            ck.history)


def _gradients_pass(run: Run, params) -> bool:
    import fnann

    x, t = (a[:16] for a in run.train)
    key = None  # dropout: the training pass, masks drawn from the seed
    if run.net.has_dropout:
        import jax

        key = jax.random.fold_in(jax.random.key(run.opts.seed), 1)
    report = fnann.check_grads(run.net, run.loss, params, x, t, n_fd=8, seed=run.opts.seed, key=key)
    print(report.summary())
    if not report.passed:
        print(report)
    return report.passed


def _recorder(run: Run, every: int | None, first: int, params, opt_state):
    """Gradient-flow diagnostics on 256 training examples every ``every`` epochs, or None."""
    if not every:
        return None
    import fnann

    x, t = (a[:256] for a in run.train)
    recorder = fnann.diagnostics.Recorder(run.net, run.loss, x, t, run.opt, every=every)
    opt_state = fnann.optim.inner_state(opt_state)  # run.opt's own state, without a loss scale
    recorder.record(first, params, opt_state if opt_state is not None else run.opt.init(params))
    return recorder


def _meta(run: Run, **extra) -> dict:
    """A checkpoint's ``meta``: the data, its classes and statistics, and the run's record."""
    import numpy as np

    import fnann

    o, data = run.opts, run.data
    meta = {"data": o.data, "task": data.task, "test_size": o.test_size, "seed": o.seed, "label": o.label,
            "loss": run.loss.name, "optimizer": o.optimizer,
            "classes": list(map(str, data.classes)) if run.classify else None, "run": run.record,
            "fnann_version": fnann.__version__}
    for field in ("x_mean", "x_std", "target_mean", "target_std"):
        value = getattr(data, field)
        meta[field] = None if value is None else np.asarray(value, np.float64).tolist()
    return {**meta, **extra}


def _fit(run: Run, params, stats, opt_state, first: int, key, history: dict, recorder, plain: bool, out: Path,
         resumed: bool):
    """Fits; returns ``(params, stats, history so far, state, best epoch or None)``. A diverged run
    saves its last finite params in ``diverged.npz`` and ends in a UsageError. ``stats``: batch
    norm's running statistics, given to ``fit`` and returned by it (``()`` for other nets)."""
    import numpy as np

    import fnann

    o = run.opts
    progress = Progress(o.epochs, first, plain, run.show_accuracy)
    so_far = {k: list(v) for k, v in history.items()}
    last, saved = first + o.epochs, []

    def each_epoch(epoch: int, logs: dict, state) -> None:
        """The progress, and every --save-every epochs (not the last: the final save follows)
        a resumable checkpoint of the run so far, as the final one is written."""
        progress(epoch, logs)
        for k, v in logs.items():
            so_far.setdefault(k, []).append(v)
        if o.save_every and (epoch + 1) % o.save_every == 0 and epoch + 1 < last:
            _write_checkpoint(run, out, state.params, state.stats, state, _shown(run, so_far), _meta(run))
            saved.append(epoch + 1)

    try:
        fitted = fnann.fit(
            run.net, run.loss, run.opt, params, *run.train, key=key, epochs=o.epochs, batch_size=run.batch,
            method=o.method, validation_data=run.val, opt_state=opt_state, initial_epoch=first,
            patience=o.patience, callback=each_epoch, return_state=True,
            params_callback=None if recorder is None else (
                lambda e, p, s: recorder(e, p, fnann.optim.inner_state(s))),  # the unscaled optimizer's state
            compute_dtype=o.compute_dtype, **with_stats(run.net, stats))
        params, stats, new, state = fitted if run.net.has_batch_norm else (fitted[0], (), *fitted[1:])
    except fnann.TrainingDivergedError as e:
        progress.close()
        path = out / "diverged.npz"
        so_far = {k: list(history.get(k, [])) + list(v) for k, v in e.history.items()}
        fnann.save(path, run.net, e.params, e.opt_state, epoch=e.epoch, key=key, history=so_far, meta=_meta(run),
                   **with_stats(run.net, getattr(e, "stats", None)))
        kept = f"the params after epoch {e.epoch}" if e.epoch else "the initial params"
        ckpt = out / "checkpoint.npz"
        cause = e.cause or "the loss or the params became NaN or inf"
        raise UsageError(f"training diverged in epoch {e.epoch + 1}: {cause}; {kept} (the last good ones) are "
                         f"saved in {path}"
                         + (f", {ckpt} holds the last periodic save (epoch {saved[-1]})" if saved else
                            f", {ckpt} is unchanged" if resumed else "")
                         + f"; try a smaller --lr (now {o.lr:g}), --clip 1 or --schedule warmup") from None
    finally:
        progress.close()
    new = _shown(run, new)
    if recorder is not None:
        print(f"gradient flow after epoch {recorder.epochs[-1]} ({len(recorder.x)} training examples):\n"
              + fnann.diagnostics.format_diagnostics(recorder.records[-1], run.net))
    best_epoch = first + int(np.argmin(new["val_loss"])) if o.patience is not None and new["val_loss"] else None
    if best_epoch is not None:
        print(_early_stopping(new, first, best_epoch, o))
    return params, stats, {k: list(history.get(k, [])) + v for k, v in new.items()}, state, best_epoch


def _shown(run: Run, history: dict) -> dict:
    """The history a run keeps: no val_accuracy for k > 1 units of a binary head (see ``Run``)."""
    return {k: v for k, v in history.items() if run.show_accuracy or k != "val_accuracy"}


def _early_stopping(new: dict, first: int, best_epoch: int, o: TrainOptions) -> str:
    ran = len(new["loss"])
    stopped = (f"early stopping: no better validation loss for {o.patience + 1} epochs, stopped after epoch "
               f"{first + ran}" if ran < o.epochs else f"early stopping: ran all {ran} epochs")
    return (f"{stopped}; kept the params of epoch {best_epoch + 1}, the best (val_loss "
            f"{new['val_loss'][best_epoch - first]:.4f})")


def _evaluate(run: Run, params, stats) -> tuple[str, dict]:
    """Prints the test metrics (batch norm: by the running statistics); ``(the plot's title, the metrics)``."""
    import numpy as np

    import fnann
    from fnann.app import metrics

    data = run.data
    y_hat = np.asarray(fnann.predict(run.net, params, data.x_test, **with_stats(run.net, stats)))
    test = fnann.evaluate(run.net, params, *run.test, run.loss, **with_stats(run.net, stats))
    if run.classify:
        test["accuracy"] = float(np.mean(metrics.predicted_classes(y_hat) == data.y_test))
        print(f"test accuracy {test['accuracy']:.4f}  test loss {test['loss']:.4f}")
        title = f"{data.name}: {describe(run.net)}, test accuracy {test['accuracy']:.3f}"
    else:
        test["rmse"], test["r2"] = metrics.rmse_r2(data.unscale_y(y_hat), data.unscale_y(data.y_test))
        print(f"test RMSE {test['rmse']:.4g}  R² {test['r2']:.4f}  (original units)  "
              f"test loss {test['loss']:.4f} ({run.loss.name}, standardized targets)")
        title = f"{data.name}: {describe(run.net)}, test RMSE {test['rmse']:.4g}, R² {test['r2']:.3f}"
    return title, test


def _save(run: Run, out: Path, params, stats, state, history: dict, meta: dict) -> None:
    """The checkpoint (params, running statistics, optimizer state, epoch, key, history, meta) and history.csv."""
    from fnann.app.history import save_history

    print(f"saved {_write_checkpoint(run, out, params, stats, state, history, meta)}")
    print(f"saved {save_history(out / 'history.csv', history)}")


def _write_checkpoint(run: Run, out: Path, params, stats, state, history: dict, meta: dict) -> str:
    """``out/checkpoint.npz`` (atomically): ``params``, batch norm's running ``stats``, and the
    optimizer state, epoch and key of ``state``."""
    import fnann

    return fnann.save(out / "checkpoint.npz", run.net, params, state.opt_state, epoch=state.epoch, key=state.key,
                      history=history, meta=meta, **with_stats(run.net, stats))


def _show_plots(curves, recorder, out: Path, title: str) -> None:
    """Waits for the curves (and draws the diagnostics heatmap); a missing matplotlib or a
    failed helper is one line, the run's files stay."""
    from fnann.app.plot_worker import PlotError

    try:
        print(f"saved {curves()}")
        if recorder is not None:
            from fnann.app.diagnostics_plots import plot_heatmap

            print(f"saved {plot_heatmap(recorder.epochs, recorder.stacked(), out / 'diagnostics.png', title=title)}")
    except (ImportError, PlotError) as e:
        print(f"no plot: {e}")
