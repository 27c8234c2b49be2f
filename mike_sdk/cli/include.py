"""``mike --include MODULE_OR_FILE``: import user code so that its registrations run.

A strategy or backend defined in a script registers itself with
``@STRATEGIES.register`` / ``@BACKENDS.register`` when its module is imported; the
command line imports it before running the command::

    mike --include my_strategies.py eval --strategy mine ...
    mike eval --include my_package.strategies --strategy mine ...
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import traceback
from pathlib import Path
from types import ModuleType

from mike_sdk.errors import ConfigError, one_line


def _looks_like_path(target: str) -> bool:
    return target.endswith(".py") or "/" in target or "\\" in target


def _module_name(path: Path) -> str:
    """A module name for a file: its stem, made unique if another module has it."""
    stem = re.sub(r"\W", "_", path.stem) or "included"
    if stem[0].isdigit():
        stem = f"_{stem}"
    name, n = stem, 1
    while name in sys.modules:
        n += 1
        name = f"{stem}_{n}"
    return name


def _loaded_from(path: Path) -> ModuleType | None:
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if file and Path(file).resolve() == path:
            return module
    return None


def _import_file(path: Path) -> ModuleType:
    resolved = path.resolve()
    # Importing a file twice would register its classes twice (a ConfigError).
    module = _loaded_from(resolved)
    if module is not None:
        return module
    name = _module_name(resolved)
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} is not an importable Python file")
    module = importlib.util.module_from_spec(spec)
    # Like `python file.py`: the file may import modules that sit beside it.
    if str(resolved.parent) not in sys.path:
        sys.path.insert(0, str(resolved.parent))
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def include(target: str, *, verbose: bool = False) -> ModuleType:
    """Import ``target``, a dotted module name or a ``.py`` file; return the module.

    Failures raise a one-line :class:`~mike_sdk.errors.ConfigError`; with ``verbose``
    the traceback is printed to stderr first.

    >>> include("json").__name__
    'json'
    """
    path = Path(target).expanduser()
    as_file = _looks_like_path(target) or path.is_file()
    if as_file and not path.is_file():
        what = "is a folder, not a .py file" if path.is_dir() else "no such file"
        raise ConfigError(f"--include {target}: {what} ({path.resolve()}).")
    try:
        return _import_file(path) if as_file else importlib.import_module(target)
    except ModuleNotFoundError as exc:
        if not as_file and exc.name and (target + ".").startswith(exc.name + "."):
            raise ConfigError(f"--include {target}: no module named {exc.name!r} (give an "
                              "importable module name or the path of a .py file).") from None
        error: Exception = exc
    except Exception as exc:  # user code may raise anything while it imports
        error = exc
    if verbose:
        traceback.print_exception(error)
    kind = "file" if as_file else "module"
    hint = "" if verbose else " (-v shows the traceback)"
    # A ConfigError (say, a name registered twice) is already a sentence of ours.
    problem = str(error) if isinstance(error, ConfigError) else one_line(error)
    raise ConfigError(f"--include {target}: importing {kind} {target!r} failed: "
                      f"{problem}{hint}")


def include_all(targets: list[str], *, verbose: bool = False) -> None:
    """:func:`include` each target, in order."""
    for target in targets:
        include(target, verbose=verbose)
