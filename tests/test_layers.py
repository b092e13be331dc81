"""The layer rule of docs/architecture.md: every import points down, and no module cycle."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.data import REPO

# Bottom to top; a module belongs to the longest prefix that names it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("core",),
    ("models",),
    ("transports",),
    ("stream",),
    ("stages",),
    ("offline", "viewer", "examples", "models.training", "run_offline", "run_live", "web"),
    ("run_web",),
    ("bench",),
    ("tests",),
)
# Applications do not import each other, except these (the entry points open the viewer).
# The web app's jobs run the offline runner, and its live record button is the viewer's
# recorder.
ALLOWED_SIDEWAYS = {
    ("run_offline", "viewer"),
    ("run_live", "viewer"),
    ("run_offline", "offline"),
    ("web", "offline"),
    ("web", "viewer"),
}
# Tests may use bench's clip and process tools; bench never imports tests.
ALLOWED_UP = {("tests", "bench")}


def owner(module: str) -> tuple[int, str] | None:
    """(layer index, package prefix) of a project module; None for a third-party one."""
    found = None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if found is None or len(prefix) > len(found[1]):
                    found = (index, prefix)
    return found


def project_modules() -> dict[str, Path]:
    skip = {".venv", "data", ".git"}
    return {
        ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): path
        for path in REPO.rglob("*.py")
        if not skip & set(path.relative_to(REPO).parts)
    }


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def violations(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for module, targets in graph.items():
        me = owner(module)
        for target in targets:
            other = owner(target)
            if me is None or other is None or other[1] == me[1]:
                continue
            upward = other[0] > me[0] and (me[1], other[1]) not in ALLOWED_UP
            sideways = other[0] == me[0] and (me[1], other[1]) not in ALLOWED_SIDEWAYS
            if upward or sideways:
                bad.append(f"{module} imports {target}")
    return sorted(bad)


def module_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: {t for t in imports(path) if t in modules} for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Import cycles between modules (depth-first search for back edges)."""
    found, state, stack = [], {}, []

    def visit(module: str) -> None:
        state[module] = "open"
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                found.append(stack[stack.index(target) :] + [target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)
    return found


def test_every_import_points_down() -> None:
    graph = module_graph()
    assert len(graph) > 80, "the walk found the project's modules"
    assert violations(graph) == []


def test_no_import_cycles() -> None:
    assert cycles(module_graph()) == []


def test_the_rule_catches_an_upward_import() -> None:
    """A stage imported by the engine core, or training code by a stage, is refused."""
    assert violations({"stream.processes": {"stages.capture"}}) == [
        "stream.processes imports stages.capture"
    ]
    assert violations({"stages.lift": {"models.training.mocap"}}) == [
        "stages.lift imports models.training.mocap"
    ]
    assert violations({"core.packet": {"transports.codec"}})
    assert violations({"bench.bench_live": {"tests.data"}})
    assert violations({"viewer.app": {"offline.runner"}})  # applications stand apart
    assert violations({"stages.lift": {"models.lifter", "core.packet"}}) == []
    assert cycles({"a": {"b"}, "b": {"a"}}) == [["a", "b", "a"]]
