"""Registries of named objects, where a family's members are named by their parameter.

An activation or a loss with a parameter (a leaky ReLU's slope, Huber's δ) is a *family*:
``leaky_relu_with(0.2)`` is named ``"leaky_relu(0.2)"`` and the family's default is the plain
name (``"leaky_relu"``). A `Named` registry finds the listed names and, by parsing, every
member of its families, so a name written in a checkpoint or on the command line finds the
same (cached) object again.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

_MEMBER = re.compile(r"^(?P<family>[a-z_]+)\((?P<value>[^()]{1,40})\)$")


def member_name(family: str, value: float, default: float) -> str:
    """``family`` for the default value, else ``family(value)`` (``"leaky_relu(0.2)"``)."""
    return family if value == default else f"{family}({value!r})"


def is_member_name(name: str) -> bool:
    """Whether ``name`` has the form ``family(value)``."""
    return isinstance(name, str) and _MEMBER.match(name) is not None


def real_parameter(name: str, value: Any, low: float = 0.0, high: float = math.inf, *,
                   high_open: bool = False, low_open: bool = False) -> float:
    """``value`` as a finite float in its range, or a TypeError/ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a real number; got {value!r}.")
    value = float(value)
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    if not (math.isfinite(value) and above and below):
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be a finite number in {interval}; got {value!r}.")
    return value


class Named(Mapping):
    """A read-only view of ``registry`` (name -> object) that also builds ``families``'
    members from their names: ``families[family](value)`` for ``"family(value)"``.

    Iterating lists the registry's names only (a family by its default member)."""

    def __init__(self, registry: dict, families: Mapping[str, Callable[[float], Any]], what: str):
        self._registry, self._families, self._what = registry, families, what

    def member(self, name: str, argname: str):
        """The member ``name`` names, or None if it has not the form ``family(value)`` of a known
        family; ValueError naming ``argname`` for a value the family refuses."""
        m = _MEMBER.match(name)
        if m is None or m["family"] not in self._families:
            return None
        try:
            value = float(m["value"])
        except ValueError:
            raise ValueError(f"{argname}: {name!r}: the parameter of {m['family']} must be a number; "
                             f"got {m['value']!r}.") from None
        try:
            return self._families[m["family"]](value)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{argname}: {name!r}: {e}") from None

    def __getitem__(self, name: str):
        if name in self._registry:
            return self._registry[name]
        try:
            found = self.member(name, self._what) if isinstance(name, str) else None
        except ValueError as e:
            raise KeyError(str(e)) from None
        if found is None:
            raise KeyError(name)
        return found

    def __iter__(self):
        return iter(self._registry)

    def __len__(self) -> int:
        return len(self._registry)

    def __repr__(self) -> str:
        return f"{self._what}s({', '.join(self)})"
