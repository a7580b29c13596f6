"""The package's shape, checked: only `ui/` imports Streamlit, no part imports a part above it, pages stay thin,
and only the objects that own a folder write into it.

The parts, bottom to top: the shared base modules (errors, params, spec, numeric, atomic, and the data source's
declaration), then data → model → train → runs → analysis → evals / audit → experiments → ui, with the CLI on top.
A module may import its own part and any part below it; the pages (`pages/*.py`) sit above everything.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "normbt_viz"
PAGES = sorted((ROOT / "pages").glob("*.py")) + [ROOT / "app.py"]
BASE = {"errors", "params", "spec", "numeric", "atomic", "__init__"}
# Declarations the base modules build on although they live with their part: the run spec extends the data source.
BASE_MODULES = {"normbt_viz.data.source"}
LEVELS = {"base": 0, "data": 1, "model": 2, "train": 3, "runs": 4, "analysis": 5, "evals": 6, "audit": 6,
          "experiments": 7, "ui": 8, "cli": 9, "__main__": 9}


def part_of(module: str) -> str:
    """'normbt_viz.train.loop' -> 'train'; 'normbt_viz.spec' -> 'base'."""
    if module in BASE_MODULES:
        return "base"
    head = module.split(".")[1] if module.count(".") else "__init__"
    return "base" if head in BASE else head


def parsed(path: Path) -> ast.Module:
    """The file's syntax tree without the bodies of `if TYPE_CHECKING:`, which name types for the reader and
    import nothing at run time."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            node.body = []
    return tree


def imports_of(path: Path) -> list[str]:
    """Every module `path` imports, at any depth of the file (function-level imports count too)."""
    found = []
    for node in ast.walk(parsed(path)):
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


def test_base_declarations_import_only_the_base():
    """The data source's declaration is read by the base spec, so it may not pull a loader in."""
    for name, path in modules():
        if name in BASE_MODULES:
            below = [m for m in imports_of(path) if m.startswith("normbt_viz.") and part_of(m) != "base"]
            assert below == [], f"{name} imports {below}"


def test_analysis_never_trains():
    """Analysis reads runs; it never starts one (no trainer, no launcher)."""
    trainer_users = [f"{name} imports {m}" for name, path in modules() if part_of(name) == "analysis"
                     for m in imports_of(path) if m.startswith(("normbt_viz.train", "normbt_viz.runs.launcher"))]
    assert trainer_users == []


# -- pages ------------------------------------------------------------------------------------------------
FILE_SUFFIXES = (".json", ".jsonl", ".parquet", ".csv", ".md", ".npy", ".npz", ".log", ".pid", ".safetensors", ".tmp")
FILE_CALLS = {"open", "read_text", "read_bytes", "write_text", "write_bytes", "is_file", "is_dir", "exists", "glob",
              "rglob", "iterdir", "mkdir", "unlink", "stat"}


def layout_names() -> set[str]:
    """The file and folder names of the run and audit layouts, as RunDir and AuditDir spell them."""
    names = set()
    for path in (PACKAGE / "runs" / "rundir.py", PACKAGE / "audit" / "auditdir.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and " " not in node.value:
                if (node.value.endswith(FILE_SUFFIXES) and not node.value.startswith(".")) or (node.value.startswith("_") and node.value.strip("_").isalpha()):
                    names.add(node.value)
    return names


def test_pages_are_thin():
    """A page reads state, calls the core and draws: it imports no torch and no pathlib, names no file or folder of
    the run and audit layouts, and touches no file itself (RunDir, AuditDir and the core do)."""
    layout = layout_names()
    assert {"spec.json", "status.json", "audit.parquet", "progress.json", "_uploads", "_audits"} <= layout
    problems = []
    for path in PAGES:
        tree = parsed(path)
        for module in imports_of(path):
            if module.split(".")[0] in ("torch", "pathlib", "os", "shutil", "json", "glob"):
                problems.append(f"{path.name} imports {module}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                named = [name for name in layout if name in node.value]
                if named:
                    problems.append(f"{path.name}:{node.lineno} names {named} of a run or audit folder")
            if isinstance(node, ast.Call):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if name in FILE_CALLS:
                    problems.append(f"{path.name}:{node.lineno} calls {name}()")
    assert problems == []


# -- who writes files ---------------------------------------------------------------------------------------
# The folder owners and the writer they use: every file under a run or an audit folder goes through these.
OWNERS = {"normbt_viz.atomic", "normbt_viz.runs.rundir", "normbt_viz.audit.auditdir"}
# Modules that write elsewhere, or into a path an owner hands them; each says where.
ELSEWHERE = {
    "normbt_viz.data.sources": "write_like_source: the audit's cleaned copy, at the path AuditDir.cleaned_stem gives",
    "normbt_viz.model.backbones": "the converted-backbone cache under $NORMBT_VIZ_CACHE",
    "normbt_viz.model.reward_model": "the model folder RunDir.model_staging() gives",
    "normbt_viz.model.export": "the model folder RunDir.model_staging() gives",
    "normbt_viz.experiments.report": "the report folder (its own output: summary, figures, CSVs)",
    "normbt_viz.ui.serve": "the log of an app it starts for a test or a benchmark",
}


def _writes(path: Path) -> list[str]:
    """Calls in `path` that write or remove a file (a temp path handed in by atomic_write does not count)."""
    found = []
    for node in ast.walk(parsed(path)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id == "open":
            mode = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "mode"), None)
            if isinstance(mode, ast.Constant) and any(c in mode.value for c in "wax"):
                found.append(f"open:{node.lineno}")
        elif isinstance(func, ast.Attribute):
            owner = getattr(func.value, "id", "")
            first = node.args[0] if node.args else None
            to_path = first is not None and not (isinstance(first, ast.Name) and first.id == "tmp")
            if func.attr in ("write_text", "write_bytes", "mkdir", "unlink", "savefig", "save_pretrained", "touch") \
                    or (func.attr in ("to_parquet", "to_csv", "to_json") and to_path) \
                    or (owner in ("os", "shutil") and func.attr in ("replace", "rename", "rmtree", "remove")) \
                    or (owner in ("np", "torch") and func.attr == "save"):
                found.append(f"{func.attr}:{node.lineno}")
    return found


def test_only_the_folder_owners_write_files():
    writers = {name: _writes(path) for name, path in modules()}
    unexpected = {name: calls for name, calls in writers.items() if calls and name not in OWNERS | set(ELSEWHERE)}
    assert unexpected == {}, "write through RunDir / AuditDir / normbt_viz.atomic, or say where in ELSEWHERE"
    page_writes = {path.name: _writes(path) for path in PAGES if _writes(path)}
    assert page_writes == {}
    stale = [name for name in ELSEWHERE if not writers.get(name)]
    assert stale == [], "no longer writes: drop it from ELSEWHERE"


def test_a_trainer_is_only_built_by_its_constructor():
    """Tests and benchmarks build a Trainer through `Trainer.from_spec` / `Trainer.from_features`, never by setting
    its attributes by hand (which let a second construction path drift from the first)."""
    assigned = []
    for path in sorted((ROOT / "tests").glob("*.py")) + sorted((ROOT / "benchmarks").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
            for target in targets:
                if isinstance(target, ast.Attribute) and getattr(target.value, "id", "") in ("trainer", "warm", "timed"):
                    assigned.append(f"{path.name}:{node.lineno} sets {target.value.id}.{target.attr}")
    assert assigned == []
