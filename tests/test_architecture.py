"""The shape of the source tree: no import cycles, small modules, small folders.

Read from the files (``ast``), so that a cycle hidden behind an import order that
happens to work today still fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Source folder -> the package it is installed as (pyproject's package-dir).
ROOTS = {"mike_sdk": "mike_sdk", "backends": "mike_sdk.backends", "prompts": "mike_sdk.prompts"}
MAX_LINES = 400
MAX_MODULES_PER_FOLDER = 12


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the three folders."""
    found = {}
    for folder, package in ROOTS.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = list(path.relative_to(REPO / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


def top_level_imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Modules of ours that ``name`` imports when it is imported (not inside functions,
    not under ``if TYPE_CHECKING``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # "from package import module" imports the module too.
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycles() -> None:
    found = modules()
    graph = {name: top_level_imports(name, path, set(found)) for name, path in found.items()}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("name", sorted(modules()))
def test_modules_stay_small(name: str) -> None:
    lines = len(modules()[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines; split it by responsibility"


def test_folders_stay_small() -> None:
    for folder in ROOTS:
        for directory in [REPO / folder, *(p for p in (REPO / folder).rglob("*") if p.is_dir())]:
            count = len([p for p in directory.glob("*.py") if p.name != "__init__.py"])
            assert count <= MAX_MODULES_PER_FOLDER, f"{directory} holds {count} modules"


# -- the core reaches backends through the Backend protocol only --------------------------

CORE = ("mike_sdk", "prompts")


def _private_members_of_backends() -> set[str]:
    """Names of the private methods and attributes the backends' classes define."""
    names: set[str] = set()
    for path in (REPO / "backends").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                        names.add(item.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) \
                    and isinstance(node.value, ast.Name) and node.value.id == "self":
                names.add(node.attr)
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def core_violations(source: str, private: set[str]) -> list[str]:
    """What a core module does that only backends may: touch a backend's private member
    (on anything but ``self``/``cls``), import a backend module by name, or hand one to
    ``importlib``. Doctests (in docstrings) are examples, not code: not parsed."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in private \
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
            found.append(f"line {node.lineno}: private member {node.attr}")
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = [node.module or ""]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "import_module" and node.args:
            arg = node.args[0]
            modules = [arg.value if isinstance(arg, ast.Constant) and isinstance(
                arg.value, str) else "<computed>"]
        found += [f"line {node.lineno}: imports {m}" for m in modules
                  if m.startswith("mike_sdk.backends") or m == "<computed>"
                  or m.startswith("backends")]
    return found


def test_core_touches_backends_through_the_protocol_only() -> None:
    private = _private_members_of_backends()
    assert {"_client_here", "_secrets", "_base_url"} <= private
    bad = {}
    for folder in CORE:
        for path in sorted((REPO / folder).rglob("*.py")):
            if path.relative_to(REPO).as_posix() == "mike_sdk/cli/include.py":
                continue  # `--include MODULE` imports what the user names: that is its job
            found = core_violations(path.read_text(encoding="utf-8"), private)
            if found:
                bad[path.relative_to(REPO).as_posix()] = found
    assert not bad, bad


def test_the_core_check_catches_what_it_should() -> None:
    private = {"_client_here", "_secrets"}
    assert core_violations("backend._client_here()", private)
    assert core_violations("x = importlib.import_module('mike_sdk.backends.openai')", private)
    assert core_violations("from mike_sdk.backends.openai import read_completion", private)
    assert core_violations("def f():\n    import mike_sdk.backends.anthropic", private)
    assert not core_violations("self._secrets()", private)
    assert not core_violations("from mike_sdk.backend import Backend", private)


# -- one place prices answers and bounds --------------------------------------------------

PRICING_SITE = "mike_sdk/calls/limits.py"


def pricing_calls(source: str) -> list[int]:
    """Lines that compute a price: a price table's ``cost`` / ``generation_cost`` or a
    price's ``at_batch_rates``."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name, owner = node.func.attr, node.func.value
            owner_name = owner.attr if isinstance(owner, ast.Attribute) else \
                owner.id if isinstance(owner, ast.Name) else ""
            if name in ("generation_cost", "at_batch_rates") or (
                    name == "cost" and owner_name in ("prices", "table", "price_table")):
                lines.append(node.lineno)
    return lines


def test_one_pricing_site() -> None:
    """Answers and upper bounds are priced in CallGuard (calls/limits.py) only; everything
    else asks the client (``cost``, ``upper_bound``) or the guard."""
    bad = {}
    for folder in ROOTS:
        for path in sorted((REPO / folder).rglob("*.py")):
            where = path.relative_to(REPO).as_posix()
            if where in (PRICING_SITE, "mike_sdk/calls/pricing.py"):
                continue
            if lines := pricing_calls(path.read_text(encoding="utf-8")):
                bad[where] = lines
    assert not bad, bad
    assert pricing_calls((REPO / PRICING_SITE).read_text(encoding="utf-8"))
    assert pricing_calls("x = self.guard.prices.cost(model, 1, 2)")
    assert pricing_calls("x = prices.generation_cost(model, g, batch=True)")
