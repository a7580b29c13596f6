"""The package's shape, checked: only `ui/` imports Streamlit, and no part imports a part above it.

The parts, bottom to top: the shared base modules (errors, spec, numeric, atomic), then data → model → train →
runs → analysis (and integrations, the bridges to TRL) → ui, with the CLI on top. A module may import its own part and any part below it.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "normbt_viz"
BASE = {"errors", "spec", "numeric", "atomic", "__init__"}
LEVELS = {"base": 0, "data": 1, "model": 2, "train": 3, "runs": 4, "analysis": 5, "integrations": 5, "ui": 6, "cli": 7, "__main__": 7}


def part_of(module: str) -> str:
    """'normbt_viz.train.loop' -> 'train'; 'normbt_viz.spec' -> 'base'."""
    head = module.split(".")[1] if module.count(".") else "__init__"
    return "base" if head in BASE else head


def imports_of(path: Path) -> list[str]:
    """Every module `path` imports, at any depth of the file (function-level imports count too), except under
    `if TYPE_CHECKING:`, which names a type for the reader and imports nothing at run time."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            node.body = []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module if node.level == 0 else "normbt_viz.<relative>")
    return found


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        name = "normbt_viz." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        yield name.removesuffix(".__init__"), path


def test_every_module_belongs_to_a_known_part():
    for name, _ in modules():
        if name != "normbt_viz":
            assert part_of(name) in LEVELS, f"{name}: add it to a part (or to BASE) in this test"


def test_only_ui_imports_streamlit():
    offenders = [name for name, path in modules()
                 if part_of(name) != "ui" and any(m == "streamlit" or m.startswith("streamlit.") for m in imports_of(path))]
    assert offenders == []


def test_no_relative_imports_so_the_graph_is_readable():
    assert [name for name, path in modules() if "normbt_viz.<relative>" in imports_of(path) and not name.endswith("__main__")] == []


def test_no_part_imports_a_part_above_it():
    upward = []
    for name, path in modules():
        if name == "normbt_viz":
            continue
        mine = LEVELS[part_of(name)]
        for imported in imports_of(path):
            if imported.startswith("normbt_viz.") and imported != "normbt_viz.<relative>":
                if LEVELS[part_of(imported)] > mine:
                    upward.append(f"{name} imports {imported}")
    assert upward == []


def test_analysis_never_imports_the_trainer():
    trainer_users = [name for name, path in modules() if part_of(name) == "analysis"
                     and any(m.startswith("normbt_viz.train") for m in imports_of(path))]
    assert trainer_users == []
