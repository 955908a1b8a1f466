"""The import direction: the library never imports the application, the application uses
only the library's public modules.

An AST scan of every ``.py`` file under ``fnann/``, every ``import`` and ``from ... import``
anywhere in the file (module level, inside functions, under ``if TYPE_CHECKING:``):

* (a) a library module (under ``fnann/`` but not ``fnann/app/``) imports nothing of
  ``fnann.app``;
* (b) an application module (under ``fnann/app/``) imports no private library module
  (``fnann._checks``, ``fnann._args``, ``fnann._fit_guards``, ...);
* (c) the core (the library outside ``fnann/sklearn/``) imports neither scikit-learn, nor
  scipy, nor ``fnann.sklearn``: they are an extra's.
"""

from __future__ import annotations

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (file, module): the only library files that may name the application.
ALLOWED_APP_IMPORTS = {
    "fnann/__main__.py": ("fnann.app.cli",),  # the console entry, ``python -m fnann``
    # the package namespace: ``fnann.datasets`` and ``fnann.plots`` are the app's modules
    # (``_MODULES``, imported on first use); the eager import is for type checkers only.
}


def module_name(relpath: str) -> str:
    """``fnann/optim/base.py`` -> ``fnann.optim.base``; ``fnann/app/__init__.py`` -> ``fnann.app``."""
    parts = relpath[:-3].split("/")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_names(tree: ast.AST, relpath: str):
    """``(line, dotted name)`` for everything each import statement binds, relative imports
    resolved: ``from fnann import _checks`` gives ``fnann._checks``."""
    package = module_name(relpath).split(".")
    if not relpath.endswith("__init__.py"):
        package = package[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + (node.module.split(".") if node.module else []))
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}"


def _within(name: str, module: str) -> bool:
    return name == module or name.startswith(module + ".")


def _is_private_module(name: str, root: str) -> bool:
    """Whether ``name`` is, or lies in, a private module of the package, ``fnann._x`` (one
    leading underscore; whether or not such a module exists: the name alone says private)."""
    parts = name.split(".")
    return len(parts) > 1 and parts[1].startswith("_") and not parts[1].startswith("__")


def violations(relpath: str, source: str, root: str = ROOT) -> list[str]:
    """``"file:line: ..."`` for every import of ``source`` (the file ``relpath``, e.g.
    ``fnann/mlp.py``) that crosses the line the wrong way."""
    out = []
    app = _within(module_name(relpath), "fnann.app")
    for line, name in imported_names(ast.parse(source, relpath), relpath):
        if not app and _within(name, "fnann.app"):
            if not any(_within(name, ok) for ok in ALLOWED_APP_IMPORTS.get(relpath, ())):
                out.append(f"{relpath}:{line}: the library imports the application ({name})")
        library = _within(name, "fnann") and not _within(name, "fnann.app")
        if not app and not _within(module_name(relpath), "fnann.sklearn") and any(
                _within(name, extra) for extra in ("sklearn", "scipy", "fnann.sklearn")):
            out.append(f"{relpath}:{line}: the core imports an extra ({name})")
        if app and library and _is_private_module(name, root):
            out.append(f"{relpath}:{line}: the application imports a private library module ({name})")
    return out


def scan(root: str = ROOT) -> list[str]:
    found = []
    for folder, dirs, files in os.walk(os.path.join(root, "fnann")):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for f in sorted(files):
            if f.endswith(".py"):
                path = os.path.join(folder, f)
                relpath = os.path.relpath(path, root).replace(os.sep, "/")
                with open(path, encoding="utf-8") as fh:
                    found += violations(relpath, fh.read(), root)
    return found


def test_the_library_never_imports_the_application():
    found = [v for v in scan() if "the library imports" in v]
    assert not found, "\n".join(found)


def test_the_core_imports_no_extra():
    found = [v for v in scan() if "the core imports" in v]
    assert not found, "\n".join(found)
    assert violations("fnann/train.py", "def f():\n    from sklearn.utils import shuffle\n") == [
        "fnann/train.py:2: the core imports an extra (sklearn.utils.shuffle)"]
    assert violations("fnann/sklearn/sweep.py", "import sklearn\nimport scipy.stats\n") == []


def test_the_application_imports_no_private_library_module():
    found = [v for v in scan() if "the application imports" in v]
    assert not found, "\n".join(found)


def test_the_scan_sees_every_kind_of_import():
    """Not vacuous: forbidden imports anywhere in a file are reported, with file and line."""
    library = """\
from typing import TYPE_CHECKING
import fnann.mlp
if TYPE_CHECKING:
    from fnann.app import datasets
def f():
    import fnann.app.cli
    from fnann import app
    from .app.plots import plot_history
from fnann.tree_codec import register_checkpoint_type
"""
    assert violations("fnann/lib.py", library) == [
        "fnann/lib.py:4: the library imports the application (fnann.app.datasets)",
        "fnann/lib.py:6: the library imports the application (fnann.app.cli)",
        "fnann/lib.py:7: the library imports the application (fnann.app)",
        "fnann/lib.py:8: the library imports the application (fnann.app.plots.plot_history)",
    ]
    application = """\
from fnann import _checks, mlp
from fnann.app.plots import _pyplot
def f():
    from fnann._args import check_key
    import fnann._fit_guards
    from ... import _checks as c
    from fnann import __version__
"""
    assert violations("fnann/app/sub/x.py", application) == [
        "fnann/app/sub/x.py:1: the application imports a private library module (fnann._checks)",
        "fnann/app/sub/x.py:4: the application imports a private library module (fnann._args.check_key)",
        "fnann/app/sub/x.py:5: the application imports a private library module (fnann._fit_guards)",
        "fnann/app/sub/x.py:6: the application imports a private library module (fnann._checks)",
    ]
    # the console entry may start the command line; nothing else of the app
    assert violations("fnann/__main__.py", "from fnann.app.cli import console\n") == []
    assert violations("fnann/__main__.py", "from fnann.app import datasets\n") != []
