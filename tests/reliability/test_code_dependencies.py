"""dvc.yaml lists every module a stage runs (issue case 11): the lists are derived from the imports,
so a change to a module a stage uses is never skipped as "unchanged"."""

import ast
import re

import pytest

from components.code_dependencies import ORCHESTRATION, PROJECT, listed_code, stage_code
from components.config import STAGES

DOTTED = re.compile(r"\b((?:components|tasks)(?:\.[a-z_]+)+)")


def _covers(code: list[str], path: str) -> bool:
    return any(path == entry or path.startswith(f"{entry}/") for entry in code)


def _module_path(dotted: str) -> str | None:
    """The file of the longest project module a dotted name starts with (it may end with a class)."""
    parts = dotted.split(".")
    for end in range(len(parts), 1, -1):
        for candidate in (PROJECT.joinpath(*parts[:end]).with_suffix(".py"), PROJECT.joinpath(*parts[:end], "__init__.py")):
            if candidate.is_file():
                return str(candidate.relative_to(PROJECT))
    return None


@pytest.mark.parametrize("stage", STAGES)
def test_dvc_yaml_lists_the_code_each_stage_imports(stage: str):
    assert listed_code(PROJECT / "dvc.yaml")[stage] == stage_code(stage), "run `python -m components.code_dependencies`"


def test_the_modules_the_issue_found_missing_are_listed():
    assert _covers(stage_code("monitoring"), "components/deployment/wrapper.py")
    assert _covers(stage_code("deployment"), "components/models/cnn_space.py")
    assert _covers(stage_code("deployment"), "components/training/fit.py")
    assert _covers(stage_code("training"), "components/data/preparation.py")
    assert not _covers(stage_code("task_formulation"), "components/search/trial.py")


@pytest.mark.parametrize("stage", STAGES)
def test_modules_started_by_name_are_listed(stage: str):
    """A module named in a string (NNI's trial command, a custom tuner's class path) runs without an
    import that the derivation sees: each must be listed by hand, and is then part of the stage."""
    code = stage_code(stage)
    files = [path for entry in code for path in ([PROJECT / entry] if entry.endswith(".py") else (PROJECT / entry).rglob("*.py"))]
    named = {
        module
        for path in files
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        for match in DOTTED.findall(node.value)
        if (module := _module_path(match)) is not None and match not in ORCHESTRATION  # left out on purpose
    }
    assert stage != "training" or "components/search/trial.py" in named  # the scan finds what it must
    assert all(_covers(code, module) for module in named), sorted(m for m in named if not _covers(code, m))
