"""The shape of the package, held against the code: imports run only down the layer
map of docs/architecture.md, a handful of modules sit at the top, and no function
outgrows a screen."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.project import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "src" / "rating_prediction"
ARCHITECTURE_PAGE = PROJECT_ROOT / "docs" / "architecture.md"
MAX_FUNCTION_LINES = 50
# The modules that may sit directly in the package: entry points, settings, the
# pipeline registry and the hooks.
TOP_LEVEL_MODULES = {
    "__init__",
    "__main__",
    "settings",
    "pipeline_registry",
    "hooks",
}


def _layers() -> dict[str, int]:
    """The layer of each top-level package or module, from the layer map's table in
    docs/architecture.md (``| <layer> | `a`, `b` | ...``), bottom first."""
    table = ARCHITECTURE_PAGE.read_text().split("## Layer map", 1)[1]
    layers = {}
    for row in re.finditer(r"^\|\s*(\d+)\s*\|([^|]*)\|", table, flags=re.M):
        for name in re.findall(r"`([\w.]+)`", row.group(2)):
            layers[name.removesuffix(".py").removesuffix("/")] = int(row.group(1))
    return layers


def _top_level_name(path: Path) -> str:
    return path.relative_to(PACKAGE).with_suffix("").parts[0]


def _imported_top_levels(path: Path) -> set[str]:
    """The project's top-level packages and modules ``path`` imports."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = parts[: len(parts) - node.level]
            names = [*base, *(node.module or "").split(".")]
            imported.add(names[0] if names and names[0] else node.names[0].name)
        elif isinstance(node, ast.ImportFrom) and node.module:
            module = node.module.split(".")
            if module[0] == "rating_prediction":
                imported.add(module[1] if len(module) > 1 else node.names[0].name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                module = alias.name.split(".")
                if module[0] == "rating_prediction" and len(module) > 1:
                    imported.add(module[1])
    return imported


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_the_layer_map_names_every_package_and_top_level_module():
    layers = _layers()
    present = {_top_level_name(path) for path in _sources()}
    assert present - {"__init__"} <= set(layers), sorted(present - set(layers))


@pytest.mark.parametrize(
    "path", _sources(), ids=lambda path: str(path.relative_to(PACKAGE))
)
def test_imports_run_only_down_the_layers(path):
    layers = _layers()
    own = _top_level_name(path)
    upward = sorted(
        name
        for name in _imported_top_levels(path) - {own}
        if name in layers and layers[name] >= layers.get(own, len(layers))
    )
    assert not upward, f"{own} (layer {layers.get(own)}) imports {upward}"


def test_only_entry_points_settings_registry_and_hooks_sit_at_the_top():
    top = {path.stem for path in PACKAGE.glob("*.py")}
    assert top <= TOP_LEVEL_MODULES, sorted(top - TOP_LEVEL_MODULES)


def test_no_function_is_longer_than_a_screen():
    too_long = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                lines = node.end_lineno - first + 1
                if lines > MAX_FUNCTION_LINES:
                    where = path.relative_to(PACKAGE)
                    too_long.append(f"{where}:{node.name} ({lines} lines)")
    assert not too_long, too_long
