"""``fnann train``'s options are declared once (``TrainOptions``): the parser, the ``--resume``
rules and the checkpoint's record all come from that declaration, and a run starts from
Python as well as from a command line."""

import argparse
import dataclasses
import inspect
import os
import subprocess
import sys

import pytest

import fnann
from fnann.app import cli, options
from fnann.app.options import TrainOptions
from fnann.app.training import run_training

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUIET = dict(gradcheck=False, plot=False, plain=True)


def train_parser():
    return cli.build_parser()._subparsers._group_actions[0].choices["train"]


def test_every_field_is_one_flag_of_its_group_left_at_none():
    parser = train_parser()
    actions = {a.dest: a for a in parser._actions}
    groups = {g.title: {a.dest for a in g._group_actions} for g in parser._action_groups}
    for field in dataclasses.fields(TrainOptions):
        action = actions[field.name]
        assert action.option_strings == ["--" + field.name.replace("_", "-")], field.name
        assert action.default is None, field.name  # so that --resume tells given from left out
        assert field.name in groups[field.metadata["group"]], field.name
        assert field.metadata["resume"] in ("free", "noted", "fixed"), field.name
        assert (field.metadata["note"] is not None) == (field.metadata["resume"] == "noted"), field.name
    assert list(groups)[2:6] == ["data", "network", "optimizer", "training"]
    assert cli.TRAIN_DEFAULTS == dataclasses.asdict(TrainOptions())
    assert options.RESUME_FREE == ("epochs", "patience", "save_every") and set(options.RESUME_NOTED) == {"lr", "method", "compute_dtype"}


def test_the_parsed_flags_are_the_options_given():
    args = train_parser().parse_args(["--data", "iris", "--hidden-sizes", "8,4", "--optimizer", "momentum",
                                      "--gamma", "0.5", "--decoupled", "--batch-size", "full"])
    given = options.given_options(args)
    assert given == {"data": "iris", "hidden_sizes": [8, 4], "optimizer": "momentum", "gamma": 0.5,
                     "decoupled": True, "batch_size": "full"}
    assert options.given_options(TrainOptions(**given)) == given
    opts, notes = cli.train_options(args, None)
    assert opts == TrainOptions(**given) and notes == []
    with pytest.raises(TypeError, match="epoch"):
        options.given_options({"epoch": 3})


def test_optimizers_and_their_options_come_from_the_library_registry():
    registry = fnann.optim.OPTIMIZERS
    assert set(cli.OPTIMIZERS) == set(registry) and list(cli.OPTIMIZERS)[0] == "adam"
    for name, factory in registry.items():
        after_lr = list(inspect.signature(factory).parameters)[1:]
        assert options.OPTIMIZER_OPTIONS[name] == tuple(p for p in after_lr if p in cli.TRAIN_DEFAULTS), name
        assert cli.OPTIMIZERS[name] is factory
    today = {"adam": ("b1", "b2", "eps"), "sgd": (), "momentum": ("gamma",), "rmsprop": ("beta", "eps")}
    assert {k: options.OPTIMIZER_OPTIONS[k] for k in today} == today
    parser = cli.build_parser()
    for command in ("train", "explain"):
        sub = parser._subparsers._group_actions[0].choices[command]
        choices = next(a.choices for a in sub._actions if a.dest == "optimizer")
        assert set(choices) == set(registry), command


def test_building_the_parser_reads_no_registry():
    code = ("import sys; from fnann.app import cli; cli.build_parser(); "
            "print('jax' in sys.modules, 'fnann.optim' in sys.modules, 'fnann.activations' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": ROOT})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False", "False"]


def test_a_run_from_python_records_its_options_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    assert run_training(TrainOptions(data="xor", epochs=2, hidden_sizes=[8], optimizer="sgd"), out, **QUIET) == 0
    ck = fnann.load(out / "checkpoint.npz")
    record = ck.meta["run"]
    assert ck.epoch == 2 and ck.net == fnann.MLP([2, 8, 2])
    assert record["hidden_sizes"] == [8] and record["lr"] == 0.1 and record["loss"] == "cross_entropy"
    assert "epochs" not in record and "b1" not in record  # epochs: to add on resume; b1: Adam's
    assert record["run_epochs"] == 2  # the run's planned length: --resume continues to it
    assert set(record) == {f.name for f in dataclasses.fields(TrainOptions)} - {
        "epochs", "save_every", "gamma", "beta", "b1", "b2", "eps", "warmup_epochs", "decay_rate"} | {
        "schedule_steps", "run_epochs", "data_sha256"}
    opts, _ = cli.train_options(argparse.Namespace(), record)  # a resume that gives nothing: the recorded run
    assert {k: getattr(opts, k) for k in record if k in cli.TRAIN_DEFAULTS} == {
        k: v for k, v in record.items() if k in cli.TRAIN_DEFAULTS}
    assert run_training({"epochs": 1}, out, resume=True, **QUIET) == 0
    assert fnann.load(out / "checkpoint.npz").epoch == 3
    with pytest.raises(cli.UsageError, match="--hidden tanh"):
        run_training(TrainOptions(hidden="tanh"), out, resume=True, **QUIET)
    printed = capsys.readouterr().out
    assert "fnann train: xor" in printed and ", from epoch 2" in printed and f"saved {out / 'history.csv'}" in printed
