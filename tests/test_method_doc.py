"""docs/method.md maps each step of the method to the function that computes it: every function it names exists, and
every numbered step it cites is a numbered comment in that function, so the table cannot drift from the code."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
METHOD = ROOT / "docs" / "method.md"
# `path/to/file.py:Name` or `path/to/file.py:Class.method`, optionally followed by "step N".
REFERENCE = re.compile(r"`(?P<path>[\w/]+\.py):(?P<name>[\w.]+)`(?: step (?P<step>\d+))?")


def _table_rows() -> list[str]:
    text = METHOD.read_text(encoding="utf-8")
    section = text.split("## 8. Where each step is computed", 1)[1]
    return [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| equation")]


def _references() -> list[tuple[str, str, str | None]]:
    return [(m["path"], m["name"], m["step"]) for row in _table_rows() for m in REFERENCE.finditer(row)]


def _definition(path: str, qualified_name: str) -> ast.AST | None:
    """The class, function or top-level assignment `qualified_name` in `path`, or None."""
    node: ast.AST = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    for part in qualified_name.split("."):
        found = None
        for child in getattr(node, "body", []):
            if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and child.name == part:
                found = child
            elif isinstance(child, (ast.Assign, ast.AnnAssign)):
                targets = child.targets if isinstance(child, ast.Assign) else [child.target]
                if any(isinstance(target, ast.Name) and target.id == part for target in targets):
                    found = child
        if found is None:
            return None
        node = found
    return node


def test_the_table_names_every_step():
    references = _references()
    assert len(_table_rows()) >= 30 and len(references) >= 30
    steps = {step for path, name, step in references if name == "GLIMScorer._block"}
    assert steps == {"1", "2", "3", "4"}  # the four scores, each pointed to its numbered step


@pytest.mark.parametrize(("path", "name", "step"), _references(), ids=lambda value: str(value))
def test_every_named_function_exists_and_holds_its_step(path, name, step):
    definition = _definition(path, name)
    assert definition is not None, f"docs/method.md names {path}:{name}, which does not exist"
    if step is not None:
        source = ast.get_source_segment((ROOT / path).read_text(encoding="utf-8"), definition)
        assert re.search(rf"^\s*# {step}\. ", source, re.MULTILINE), f"{path}:{name} has no step '# {step}.'"


def test_nothing_shipped_points_outside_the_repository():
    # modeling/ ships to the Hub: its pointers to the method name the repository's docs/method.md, never a path
    # outside it.
    for path in [*(ROOT / "modeling").glob("*.py"), METHOD]:
        text = path.read_text(encoding="utf-8")
        assert "../shared" not in text and "/work/" not in text, path
    pointers = [path.name for path in (ROOT / "modeling").glob("*.py") if "docs/method.md" in path.read_text()]
    assert {"glim.py", "modeling_glccl.py", "losses.py"} <= set(pointers)


def test_readme_points_to_where_the_four_scores_are_computed():
    # A newcomer finds the four scores from README's one pointer: it names the scorer's function and its steps.
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    pointer = readme.split("**Where the four scores are computed:**", 1)[1].split("\n\n", 1)[0]
    name = re.search(r"steps 1-4 of `([\w.]+)`", pointer)[1]
    definition = _definition("modeling/glim.py", name)
    assert definition is not None, f"README points to modeling/glim.py:{name}, which does not exist"
    source = ast.get_source_segment((ROOT / "modeling" / "glim.py").read_text(encoding="utf-8"), definition)
    for step in "1234":
        assert re.search(rf"^\s*# {step}\. ", source, re.MULTILINE), f"{name} has no step '# {step}.'"
    assert "[docs/method.md](docs/method.md)" in pointer and "`glim_weights`" in pointer
