"""The record ``fnann train`` leaves in a checkpoint, ``meta``, declared once and checked where
the commands read it (`check_meta`, from ``load_checkpoint``), as strictly as ``fnann.load``
checks the header: a field the commands would read that is missing, of another type, out of
range or not one of its choices is one UsageError naming the file and the field.

``META`` declares the fields of ``meta`` (field -> `Spec`); ``RUN``, the run record
``meta["run"]``, is derived from `TrainOptions`: each recorded option's type (its annotation),
its choices, and its argparse type, through which a recorded value must read back as itself
(``--seed``'s bounds, ``--test-size`` in (0, 1), ``--hidden-sizes`` of widths >= 1, ...).
Fields no command reads (``test``, anything another fnann added) are left as they are.

What a field must be next to the network (as many statistics as inputs, as many classes as
outputs) is checked by `check_against_net`.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Callable
from typing import Any, NamedTuple

from fnann.app.common import UsageError
from fnann.app.options import ACTIVATIONS, FIELDS, LOSSES, TrainOptions

MAX_TEXT = 4096  # a path, a label, a class name
MAX_COUNT = 2**62  # schedule_steps, as the header's epoch and step


class Spec(NamedTuple):
    """One field: ``ok(value)`` says whether ``value`` is valid, ``what`` says what is (after
    "must be"); ``required``: whether the field may be absent."""

    what: str
    ok: Callable[[Any], bool]
    required: bool = False


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def text(what: str = "a string", required: bool = False) -> Spec:
    return Spec(what, lambda v: isinstance(v, str) and 0 < len(v) <= MAX_TEXT and "\0" not in v, required)


def integer(low: int, high: int, required: bool = False) -> Spec:
    return Spec(f"an int in [{low}, {high}]", lambda v: _is_int(v) and low <= v <= high, required)


def choice(names, what: str | None = None, required: bool = False) -> Spec:
    return Spec(what or f"one of {', '.join(names)}", lambda v: isinstance(v, str) and v in names, required)


def optional(spec: Spec) -> Spec:
    return Spec(f"null or {spec.what}", lambda v: v is None or spec.ok(v), spec.required)


def numbers(positive: bool = False) -> Spec:
    """A non-empty list of finite numbers (``positive``: each > 0: a standard deviation)."""
    return optional(Spec("a non-empty list of finite numbers" + (" > 0" if positive else ""),
                         lambda v: isinstance(v, list) and len(v) > 0 and all(
                             _is_real(x) and (x > 0 or not positive) for x in v)))


def _classes(v: Any) -> bool:
    return isinstance(v, list) and len(v) >= 2 and all(text().ok(c) for c in v) and len(set(v)) == len(v)


# --- the run record, from TrainOptions --------------------------------------------------------


def _kind_ok(value: Any, hint) -> bool:
    """Whether ``value`` (JSON) has the type the annotation ``hint`` names."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return any(_kind_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if typing.get_origin(hint) is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_kind_ok(v, item) for v in value)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return _is_int(value)
    if hint is float:
        return _is_real(value)
    return isinstance(value, hint)


def _typed(value: Any) -> str:
    """``value`` as one would type it, exactly (``repr`` of a float, widths joined by commas)."""
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def _reads_back(parse: Callable[[str], Any], value: Any) -> bool:
    try:
        return parse(_typed(value)) == value
    except Exception:  # noqa: BLE001 - argparse types raise ArgumentTypeError, ValueError, ...
        return False


def option_spec(field) -> Spec:
    """The `Spec` of a recorded option, from its `TrainOptions` field: the annotation's type, then
    the choices, the argparse type (the value must read back as itself) or the library registry
    its help names (``{activations}``, ``{losses}``). None only where the default is None."""
    hint = typing.get_type_hints(TrainOptions)[field.name]
    argparse_kwargs, help_text = field.metadata["argparse"], field.metadata["help"]
    choices = argparse_kwargs.get("choices") or (
        ACTIVATIONS if "{activations}" in help_text else LOSSES if "{losses}" in help_text else None)
    parse = argparse_kwargs.get("type")
    nullable = field.default is None

    def ok(value: Any) -> bool:
        if value is None:
            return nullable
        if not _kind_ok(value, hint) or (isinstance(value, str) and not text().ok(value)):
            return False
        split = field.metadata["names"]  # "relu,tanh" -> ("relu", "tanh") for an option of several names
        names = split(value) if split is not None and isinstance(value, str) else value
        names = names if isinstance(names, tuple) else (names,)
        if choices is not None and not all(name in choices for name in names):
            return False
        return parse is None or _reads_back(parse, value)

    what = f"a valid --{field.name.replace('_', '-')}" + (" or null" if nullable else "")
    if choices is not None:
        what = f"one of {', '.join(choices)}" + (" or null" if nullable else "")
    return Spec(what, ok)


RUN: dict[str, Spec] = {
    **{f.name: option_spec(f) for f in FIELDS if f.metadata["recorded"]},
    "schedule_steps": integer(1, MAX_COUNT),
    "run_epochs": integer(1, MAX_COUNT),
    "data_sha256": optional(Spec("64 hex digits (a SHA-256)", lambda v: isinstance(v, str) and len(v) == 64
                                 and all(c in "0123456789abcdef" for c in v))),
}
"""``meta["run"]``: every recorded option of `TrainOptions` (absent: the option's default, as
``--resume`` reads it), the schedule's length in steps, the run's planned length in epochs
(``--resume`` continues to it) and the data file's SHA-256."""

_OPTION = {f.name: RUN[f.name] for f in FIELDS if f.name in RUN}

META: dict[str, Spec] = {
    "task": choice(("classification", "regression"), required=True),
    "data": _OPTION["data"]._replace(required=True),
    "test_size": _OPTION["test_size"]._replace(required=True),
    "seed": _OPTION["seed"]._replace(required=True),
    "label": _OPTION["label"],
    "loss": choice(LOSSES, "a loss name", required=True),
    "optimizer": optional(_OPTION["optimizer"]),
    "classes": optional(Spec("a list of at least two distinct class names", _classes)),
    "x_mean": numbers(), "x_std": numbers(positive=True),
    "target_mean": numbers(), "target_std": numbers(positive=True),
    "run": optional(Spec("a dict (the run's options)", lambda v: isinstance(v, dict))),
    "fnann_version": optional(text()),
}
"""``meta``: what the commands read of it (``test``, the test metrics, is for people)."""


# --- checking -----------------------------------------------------------------------------


def _short(value: Any) -> str:
    text_ = repr(value)
    return text_ if len(text_) <= 60 else text_[:60] + "..."


def _check(record: dict, schema: dict[str, Spec], path: str, prefix: str) -> None:
    for name, spec in schema.items():
        if name not in record:
            if spec.required:
                raise UsageError(f"{path}: meta.{prefix}{name} is missing (was it written by `fnann train`?)")
            continue
        if not spec.ok(record[name]):
            raise UsageError(f"{path}: meta.{prefix}{name} must be {spec.what}; got {_short(record[name])}")


def check_meta(meta: Any, path: str) -> None:
    """Raises UsageError, naming ``path`` and the field, unless ``meta`` is a record ``fnann
    train`` could have written (``META``, and ``RUN`` for ``meta["run"]``)."""
    if not isinstance(meta, dict) or "task" not in meta:
        raise UsageError(f"{path} was not written by `fnann train` (no dataset information)")
    _check(meta, META, path, "")
    if meta.get("run") is not None:
        _check(meta["run"], RUN, path, "run.")
    for a, b in (("x_mean", "x_std"), ("target_mean", "target_std")):
        if (meta.get(a) is None) != (meta.get(b) is None) or (
                meta.get(a) is not None and len(meta[a]) != len(meta[b])):
            raise UsageError(f"{path}: meta.{a} and meta.{b} must be given together, of one length; got "
                             f"{_short(meta.get(a))} and {_short(meta.get(b))}")


def check_against_net(meta: dict, net, path: str) -> None:
    """The fields that must agree with the network: the input statistics one per input, the
    target statistics one per output, the class names one per output (two for one sigmoid unit)."""
    for field, n, what in (("x_mean", net.n_in, "inputs"), ("target_mean", net.n_out, "outputs")):
        if meta.get(field) is not None and len(meta[field]) != n:
            raise UsageError(f"{path}: meta.{field} has {len(meta[field])} entries but the network has {n} {what}")
    classes = meta.get("classes")
    if meta["task"] == "classification" and classes is not None:
        want = 2 if net.n_out == 1 else net.n_out
        if len(classes) != want:
            raise UsageError(f"{path}: meta.classes names {len(classes)} classes but the network's "
                             f"{net.n_out} output{'s' if net.n_out > 1 else ''} score {want}")
