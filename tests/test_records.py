"""The commands read a checkpoint's record (``meta``) as strictly as ``fnann.load`` reads its
header: any record ``fnann.save`` accepts but ``fnann train`` could not have written makes
``predict``, ``evaluate`` and ``train --resume`` end with exit status 2 and one line naming the
file and the field, never a traceback, never exit 0 with garbage; and no data file is read
without bound."""

import copy
import os

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

import fnann
from fnann.app import cli, common, records
from fnann.app.common import UsageError
from fnann.app.options import FIELDS

NET = fnann.MLP([2, 4, 2], hidden="relu", output="softmax")
RUN = {"data": "xor", "label": None, "task": "classification", "delimiter": None, "test_size": 0.2,
       "val_size": 0.1, "seed": 0, "hidden_sizes": [4], "hidden": "relu", "output": "softmax",
       "loss": "cross_entropy", "dtype": "float32", "optimizer": "adam", "lr": 0.001, "b1": 0.9, "b2": 0.999,
       "eps": 1e-08, "clip": None, "weight_decay": 0.001, "decoupled": False, "schedule": "constant",
       "batch_size": 32, "patience": None, "method": "manual", "schedule_steps": 18, "data_sha256": None}
META = {"data": "xor", "task": "classification", "test_size": 0.2, "seed": 0, "label": None,
        "loss": "cross_entropy", "optimizer": "adam", "classes": ["0", "1"], "run": RUN,
        "fnann_version": "0.1.0", "x_mean": [-0.05, -0.003], "x_std": [1.01, 1.03], "target_mean": None,
        "target_std": None, "test": {"loss": 1.3, "accuracy": 0.5}}  # what `fnann train --data xor` writes
PARAMS = fnann.init(jax.random.key(0), NET)
OPT_STATE = fnann.adam(1e-3).init(PARAMS)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("records")
    (d / "x.csv").write_text("0.1,0.2\n0.5,-1\n")
    return d


def save(folder, meta, name="run") -> str:
    os.makedirs(folder / name, exist_ok=True)
    return fnann.save(folder / name / "checkpoint.npz", NET, PARAMS, OPT_STATE, epoch=1, step=18,
                      key=jax.random.key(1), meta=meta)


def command(name: str, folder, run_name="run") -> list[str]:
    ckpt = str(folder / run_name / "checkpoint.npz")
    return {"predict": ["predict", ckpt, str(folder / "x.csv"), "--no-cache"],
            "evaluate": ["evaluate", ckpt, "--no-cache"],
            "resume": ["train", "--resume", "--out", str(folder / run_name), "--epochs", "1", "--no-plot",
                       "--no-cache", "--no-progress"]}[name]


def run(argv, capsys):
    status = cli.main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def one_line(status, err, name):
    prefix = "train" if name == "resume" else name
    assert status == 2 and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1 and err.startswith(f"fnann {prefix}: error: "), err


def record_error(meta) -> str | None:
    """The schema's verdict on ``meta`` (with NET): the UsageError's message, or None."""
    try:
        records.check_meta(meta, "c.npz")
        records.check_against_net(meta, NET, "c.npz")
    except UsageError as e:
        return str(e)
    return None


def test_the_record_fnann_train_writes_passes(folder, capsys):
    assert record_error(copy.deepcopy(META)) is None
    save(folder, META)
    for name in ("predict", "evaluate"):
        status, out, err = run(command(name, folder), capsys)
        assert status == 0, err


def test_the_run_record_is_derived_from_train_options():
    recorded = {f.name for f in FIELDS if f.metadata["recorded"]}
    assert recorded <= set(records.RUN) and set(records.RUN) - recorded == {"schedule_steps", "run_epochs", "data_sha256"}
    assert set(RUN) <= set(records.RUN)  # the fixture: the record of an adam run (its hyperparameters only)
    spec = records.RUN
    assert spec["seed"].ok(2**31 - 1) and not spec["seed"].ok(2**31) and not spec["seed"].ok(True)
    assert spec["test_size"].ok(0.25) and not spec["test_size"].ok(1.0) and not spec["test_size"].ok(float("nan"))
    assert spec["hidden_sizes"].ok([128, 64]) and not spec["hidden_sizes"].ok([]) and not spec["hidden_sizes"].ok([0])
    assert spec["batch_size"].ok("full") and spec["batch_size"].ok(1) and not spec["batch_size"].ok("half")
    assert spec["lr"].ok(0.0012345678901) and spec["lr"].ok(None) and not spec["lr"].ok(-1.0)
    assert spec["hidden"].ok("tanh") and not spec["hidden"].ok("nonesuch") and not spec["output"].ok(3)
    assert spec["delimiter"].ok("\t") and spec["delimiter"].ok(None) and not spec["delimiter"].ok(",,")
    assert spec["decoupled"].ok(False) and not spec["decoupled"].ok(0)
    assert spec["optimizer"].ok("nesterov") and not spec["optimizer"].ok(None)


# the reviewer's cases: each crashed with a traceback (or read /dev/zero without end) before
CASES = {
    "only a task": (lambda m: {"task": "classification"}, "meta.data is missing"),
    "no loss": (lambda m: m.pop("loss"), "meta.loss is missing"),
    "few classes": (lambda m: m.update(classes=["a"]), "meta.classes must be"),
    "classes for 3 outputs": (lambda m: m.update(classes=["a", "b", "c"]), "meta.classes names 3 classes"),
    "int label": (lambda m: m.update(label=3), "meta.label must be"),
    "huge seed": (lambda m: m.update(seed=2**70), "meta.seed must be"),
    "bool test size": (lambda m: m.update(test_size=True), "meta.test_size must be"),
    "nan std": (lambda m: m.update(x_std=[float("nan"), 1.0]), "meta.x_std must be"),
    "zero std": (lambda m: m.update(x_std=[0.0, 1.0]), "meta.x_std must be"),
    "short mean": (lambda m: m.update(x_mean=[0.0], x_std=[1.0]), "meta.x_mean has 1 entries but the network has 2"),
    "mean without std": (lambda m: m.update(x_std=None), "meta.x_mean and meta.x_std must be given together"),
    "run a list": (lambda m: m.update(run=[1]), "meta.run must be"),
    "run dtype": (lambda m: m["run"].update(dtype="float16"), "meta.run.dtype must be one of float32, float64"),
    "run delimiter": (lambda m: m["run"].update(delimiter=7), "meta.run.delimiter must be"),
    "run sizes": (lambda m: m["run"].update(hidden_sizes="4"), "meta.run.hidden_sizes must be"),
    "run batch": (lambda m: m["run"].update(batch_size=0), "meta.run.batch_size must be"),
    "run steps": (lambda m: m["run"].update(schedule_steps=2**70), "meta.run.schedule_steps must be"),
    "run digest": (lambda m: m["run"].update(data_sha256=["x"]), "meta.run.data_sha256 must be"),
    "run activation": (lambda m: m["run"].update(hidden="nonesuch"), "meta.run.hidden must be one of"),
    "unknown loss": (lambda m: m.update(loss="hinge_squared"), "meta.loss must be a loss name"),
}


@pytest.mark.parametrize("name", ["predict", "evaluate", "resume"])
@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_a_hostile_record_is_one_line_naming_file_and_field(folder, capsys, case, name):
    mutate, message = CASES[case]
    meta = copy.deepcopy(META)
    meta = mutate(meta) if case == "only a task" else (mutate(meta), meta)[1]
    path = save(folder, meta, "hostile")
    status, out, err = run(command(name, folder, "hostile"), capsys)
    one_line(status, err, name)
    assert path in err and message in err, err


def test_evaluate_hashes_no_device_pipe_or_oversized_file(folder, capsys, monkeypatch, tmp_path):
    meta = copy.deepcopy(META)
    meta["data"] = "/dev/zero"
    meta["run"] = {**RUN, "data": "/dev/zero", "data_sha256": "0" * 64}
    save(folder, meta, "zero")
    status, out, err = run(command("evaluate", folder, "zero"), capsys)  # read /dev/zero without end before
    one_line(status, err, "evaluate")
    assert "/dev/zero is not a regular file" in err
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(UsageError, match="fifo is not a regular file"):
        common.file_digest(str(fifo))  # the open does not wait for a writer
    big = tmp_path / "big.csv"
    big.write_bytes(b"1,2\n" * 100)
    assert common.file_digest(str(big)) == __import__("hashlib").sha256(b"1,2\n" * 100).hexdigest()
    monkeypatch.setattr(common, "MAX_DATA_BYTES", 399)
    with pytest.raises(UsageError, match="big.csv holds 400 bytes, more than"):
        common.file_digest(str(big))


# --- any record ---------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=6)
    | st.sampled_from(["xor", "classification", "regression", "full", "cross_entropy", "mse", "relu", "\t"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=5)
NEAR = st.lists(st.floats(-3, 3), min_size=0, max_size=4) | st.lists(st.sampled_from(["0", "1", "2", ""]), max_size=4)
FIELD_NAMES = [*records.META, *(f"run.{k}" for k in records.RUN), "bogus"]


@st.composite
def hostile(draw):
    """The record fnann train writes with one to three fields replaced by any JSON, or deleted."""
    meta = copy.deepcopy(META)
    for field in draw(st.lists(st.sampled_from(FIELD_NAMES), min_size=1, max_size=3, unique=True)):
        where, key = (meta.get("run"), field[4:]) if field.startswith("run.") else (meta, field)
        if not isinstance(where, dict):
            continue
        if draw(st.booleans()) and key in where:
            del where[key]
        else:
            where[key] = draw(JSON | NEAR)
    return meta


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(meta=hostile(), name=st.sampled_from(["predict", "evaluate", "resume"]))
def test_any_record_is_exit_0_if_valid_else_one_line_exit_2(folder, capsys, meta, name):
    verdict = record_error(meta)
    assume(name != "resume" or verdict is not None)  # a valid record would train
    path = save(folder, meta, "any")
    status, out, err = run(command(name, folder, "any"), capsys)
    if verdict is None:
        assert status in (0, 2), (status, err)  # 2: e.g. a loss the output cannot take, said by the library
        if status == 2:
            one_line(status, err, name)
    else:
        one_line(status, err, name)
        assert path in err and verdict.replace("c.npz", path) in err, (verdict, err)
