"""The layout of `harness/` as a contract, read from the source with `ast` (no import side effects).

- Every import (module-level and inside functions) points one way through the layers below: no cycle, no
  upward arrow, and so no import deferred to dodge a cycle.
- The library never imports pytest and never reads the environment, except the boundary (which passes the
  environment to child processes) and the CLI (which turns argv and the environment into plain values);
  nothing reads it at import time.
- No module registers itself or anything else in `sys.modules`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parent.parent / "harness"

# Lowest first; a module may import only from its own layer or the ones before it. The folders are the flow
# (source -> render -> plan -> cluster -> evidence -> judge -> report); shared data types sit lowest, and the
# stages that produce files import the formats they write (evidence) and the judgements they apply (judge).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("harness", "harness.errors", "harness.models", "harness.diff", "harness.progress", "harness.manifests"),
    ("harness.boundary", "harness.config"),
    ("harness.render",),
    ("harness.selection",),
    ("harness.evidence", "harness.rbac", "harness.catalogue"),
    ("harness.judge",),
    ("harness.static",),
    ("harness.cluster",),
    ("harness.plan",),
    ("harness.live",),
    ("harness.report",),
    ("harness.cli",),
)
ENV_READERS = ("harness.cli", "harness.boundary", "harness.testing")


def _modules() -> dict[str, Path]:
    found = {}
    for path in HARNESS.rglob("*.py"):
        parts = path.relative_to(HARNESS.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()
TREES = {name: ast.parse(path.read_text(), str(path)) for name, path in MODULES.items()}


def _imports(name: str) -> Iterator[tuple[str, int]]:
    for node in ast.walk(TREES[name]):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                target = f"{node.module}.{alias.name}"
                yield (target if target in MODULES else node.module), node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno


def _layer(module: str) -> int:
    best = (-1, -1)
    for index, group in enumerate(LAYERS):
        for prefix in group:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best[1]:
                best = (index, len(prefix))
    return best[0]


def test_every_module_has_a_layer_and_a_folder_named_after_its_stage() -> None:
    flat = sorted(n for n in MODULES if n.count(".") == 1 and not (HARNESS / n.split(".")[1]).is_dir())
    assert flat == ["harness.diff", "harness.errors", "harness.models", "harness.progress", "harness.selection"]
    assert not [n for n in MODULES if _layer(n) < 0 and not n.startswith("harness.testing")]


def test_imports_point_one_way_without_cycles() -> None:
    upward = []
    for name in MODULES:
        if name.startswith("harness.testing"):
            continue
        for target, line in _imports(name):
            if not target.startswith("harness") or target not in MODULES or target == name:
                continue
            if target.startswith("harness.testing"):
                upward.append(f"{name}:{line} imports the fakes {target}")
            elif _layer(target) > _layer(name):
                upward.append(f"{name}:{line} -> {target}")
    assert upward == []  # no upward arrow means no cycle either: layers are a total order


def test_the_library_never_imports_pytest() -> None:
    offenders = [f"{name}:{line}" for name in MODULES for target, line in _imports(name)
                 if target.split(".")[0] in ("pytest", "_pytest")]
    assert offenders == []


def _environment_reads(tree: ast.AST) -> Iterator[ast.AST]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv") and \
                isinstance(node.value, ast.Name) and node.value.id == "os":
            yield node


def test_only_the_cli_and_the_boundary_read_the_environment_and_never_at_import() -> None:
    readers = sorted({name for name, tree in TREES.items() if any(_environment_reads(tree))})
    assert [n for n in readers if not n.startswith(ENV_READERS)] == []
    at_import = []
    for name, tree in TREES.items():
        for statement in tree.body:  # module-level statements (function and class bodies run later)
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            at_import += [f"{name}:{node.lineno}" for node in _environment_reads(statement)]
    assert at_import == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_writes_sys_modules(name: str) -> None:
    writes = [node.lineno for node in ast.walk(TREES[name])
              if isinstance(node, (ast.Subscript, ast.Attribute)) and isinstance(node.ctx, (ast.Store, ast.Del))
              and "sys.modules" in ast.unparse(node)]
    calls = [node.lineno for node in ast.walk(TREES[name]) if isinstance(node, ast.Call)
             and ast.unparse(node.func).startswith("sys.modules.")]
    assert writes + calls == []


# ------------------------------------------------------------------ no process-wide caches of run data

CACHE_DECORATORS = ("cache", "lru_cache")
# A cached function that takes arguments keeps whatever it was called with for the life of the process; only
# these may (each is constant data of the installed package, keyed by a value of the package itself).
CACHES_WITH_ARGUMENTS = {
    "harness.evidence.bundle:_fast_validators": "validators compiled from the package's bundle schema, keyed "
                                                "by strict/relaxed: two entries, no run data",
}


def _cache_decorated(name: str) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    """Functions of a module decorated with functools.cache/lru_cache, however functools was imported."""
    tree = TREES[name]
    direct, modules = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "functools" and node.level == 0:
            direct |= {a.asname or a.name for a in node.names if a.name in CACHE_DECORATORS}
        elif isinstance(node, ast.Import):
            modules |= {a.asname or a.name for a in node.names if a.name == "functools"}
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for decorator in node.decorator_list:
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            if (isinstance(target, ast.Name) and target.id in direct) or (
                    isinstance(target, ast.Attribute) and target.attr in CACHE_DECORATORS
                    and isinstance(target.value, ast.Name) and target.value.id in modules):
                yield node
                break


def _takes_arguments(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    a = function.args
    return bool(a.posonlyargs or a.args or a.kwonlyargs or a.vararg or a.kwarg)


def test_only_argument_free_caches_of_package_data_live_for_the_whole_process() -> None:
    """Issue 13: no process-wide cache outlives a run. A memo of run data belongs on an object made per run
    (corpus.entry.CorpusReader); functools.cache/lru_cache is only for a function without arguments (constant
    data of the installed package, like an import) or one allow-listed above with its reason. Each such cache
    says why in a comment just above it."""
    keyed, unexplained, found = [], [], set()
    for name in sorted(MODULES):
        lines = MODULES[name].read_text().splitlines()
        for function in _cache_decorated(name):
            key = f"{name}:{function.name}"
            found.add(key)
            if _takes_arguments(function) and key not in CACHES_WITH_ARGUMENTS:
                keyed.append(f"{key} (line {function.lineno})")
            first = min(d.lineno for d in function.decorator_list)
            if not lines[first - 2].lstrip().startswith("#"):
                unexplained.append(f"{key} (line {first}): no comment above the decorator saying why")
    assert keyed == [], "process-wide caches keyed by arguments (move the memo onto a per-run object)"
    assert unexplained == []
    stale = [k for k in CACHES_WITH_ARGUMENTS if k not in found]
    assert stale == [], "allow-list entries whose cache is gone: delete them"


def test_the_cache_check_finds_every_spelling_of_functools_caches() -> None:
    """The check above cannot pass by missing a spelling: each of these is found, with its arguments."""
    source = '''
import functools
import functools as ft
from functools import cache, lru_cache as memo

@functools.lru_cache(maxsize=8)
def a(x): ...

@ft.cache
def b(): ...

@memo
def c(*, y): ...

@cache
def d(self): ...

def e(x): ...
'''
    TREES["harness._probe"] = ast.parse(source)
    try:
        found = {(f.name, _takes_arguments(f)) for f in _cache_decorated("harness._probe")}
    finally:
        del TREES["harness._probe"]
    assert found == {("a", True), ("b", False), ("c", True), ("d", True)}
