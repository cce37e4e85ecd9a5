"""Each pipeline stage's code, derived from its imports with grimp: what dvc.yaml lists as the stage's
code dependencies, so that a change to any module a stage runs makes DVC (and the Prefect flow, which
asks DVC) run that stage again.

``python -m components.code_dependencies`` rewrites the code entries of dvc.yaml's ``deps`` lists
(keeping data, outputs and comments); a test fails when they disagree with the imports.

Modules that run every stage without shaping its outputs are left out, so that changing how runs are
recorded does not retrain every model: the stage runner and versioning (MLflow runs, dvc.lock), the
tracking set-up and the machine's use sampled for it, which failures are retried, the ledger of
started servers, and the error types.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
PACKAGES = ("components", "tasks")
ORCHESTRATION = (
    "tasks.stage_runner",
    "tasks.versioning",
    "components.tracking",
    "components.system_metrics",
    "components.transient",
    "components.leftovers",
    "components.errors",
)
# Modules a stage runs without importing them: NNI's manager starts the trial module and loads the
# custom tuner by its dotted name.
STARTED_BY_NAME = {"training": ("components.search.trial", "components.search.successive_halving")}


def _module_file(module: str, root: Path) -> Path:
    path = root.joinpath(*module.split("."))
    return path.with_suffix(".py") if path.with_suffix(".py").is_file() else path / "__init__.py"


def _runs_code(path: Path) -> bool:
    """False for a package's ``__init__.py`` that holds only its docstring (changing it changes nothing)."""
    body = ast.parse(path.read_text()).body
    return path.name != "__init__.py" or not all(
        isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) for node in body
    )


def _python_files(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*.py") if "__pycache__" not in path.parts and _runs_code(path)}


def stage_code(stage: str, root: Path = PROJECT) -> list[str]:
    """The files ``tasks/<stage>.py`` imports, directly or not, within the project (folders whose every
    module is imported are listed as the folder), relative to ``root``, sorted."""
    import grimp

    added = str(root) not in sys.path
    if added:
        sys.path.insert(0, str(root))
    try:
        graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    finally:
        if added:
            sys.path.remove(str(root))
    for module in ORCHESTRATION:
        graph.remove_module(module)
    # what the stage imports, and what importing runs: the __init__.py of every package above a module
    modules, grown = set(), {f"tasks.{stage}", *STARTED_BY_NAME.get(stage, ())}
    while grown - modules:
        modules |= grown
        grown = modules | {upstream for module in modules for upstream in graph.find_upstream_modules(module)}
        grown |= {".".join(module.split(".")[:depth]) for module in grown for depth in range(1, module.count(".") + 1)}
    files = {path for path in (_module_file(module, root) for module in modules) if _runs_code(path)}
    listed: set[Path] = set()
    for folder in sorted({path.parent for path in files}, key=lambda path: len(path.parts)):
        if folder == root or folder.name in PACKAGES or any(folder.is_relative_to(done) for done in listed):
            continue
        if _python_files(folder) <= files:
            listed.add(folder)
    singles = {path for path in files if not any(path.is_relative_to(folder) for folder in listed)}
    return sorted(str(path.relative_to(root)) for path in listed | singles)


def is_code(dependency: str) -> bool:
    return dependency.split("/", 1)[0] in PACKAGES


def listed_code(dvc_yaml: Path) -> dict[str, list[str]]:
    """The code entries of each stage's ``deps`` in dvc.yaml, sorted."""
    import yaml

    stages = yaml.safe_load(Path(dvc_yaml).read_text())["stages"]
    return {stage: sorted(dep for dep in spec.get("deps", []) if is_code(dep)) for stage, spec in stages.items()}


def write_dvc_yaml(dvc_yaml: Path, root: Path = PROJECT) -> list[str]:
    """Rewrites each stage's code entries from its imports; returns the stages that changed."""
    from ruamel.yaml import YAML

    document_yaml = YAML()
    document_yaml.indent(mapping=2, sequence=4, offset=2)
    document = document_yaml.load(Path(dvc_yaml).read_text())
    changed = []
    for stage, spec in document["stages"].items():
        deps = spec["deps"]
        code = stage_code(stage, root)
        if sorted(dep for dep in deps if is_code(dep)) != code:
            changed.append(stage)
            others = [dep for dep in deps if not is_code(dep)]
            deps.clear()
            deps.extend([*others, *code])
    if changed:
        with Path(dvc_yaml).open("w") as stream:
            document_yaml.dump(document, stream)
    return changed


if __name__ == "__main__":
    stages = write_dvc_yaml(PROJECT / "dvc.yaml")
    print(f"dvc.yaml: code dependencies rewritten for {', '.join(stages)}" if stages else "dvc.yaml: up to date")
