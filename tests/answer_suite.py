"""The answer suite: many hand-written answers per exercise, graded in-process in seconds.

Each lesson has ``tests/answers/<lesson>.py`` defining

``SETUP``
    source run before every answer (imports and anything the test cells read), e.g.
    ``"import math\\nimport torch\\nimport bdl_course as bdl"``.
``EXERCISES``
    ``{answer_grade_id: {"tests": [test_grade_id, ...], "setup": "optional extra source",
    "correct": [source, ...], "wrong": [(source, {test_grade_id: points, ...}), ...]}}``:
    at least 3 correct answers written differently and at least 5 plausible wrong ones, each
    wrong one with the exact points every test cell of its exercise must give it (so a wrong
    answer that still earns full marks is a failing test, not a silent pass).

An answer is graded the way nbgrader grades it: in a fresh namespace run SETUP, the extra
setup, the answer, then each of the exercise's test cells (from the solution notebook, hidden
tests included); a cell that raises scores 0, one that finishes scores its points.
"""
from __future__ import annotations

import contextlib
import io
import runpy
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
ANSWERS = ROOT / "tests" / "answers"


def answer_files() -> dict[str, Path]:
    """lesson name -> its answer-suite file, for every lesson that has one."""
    return {p.stem: p for p in sorted(ANSWERS.glob("[0-9][0-9]_*.py"))}


def load(lesson: str) -> dict:
    return runpy.run_path(str(ANSWERS / f"{lesson}.py"))


def graded_cells(lesson: str) -> dict[str, tuple[str, float]]:
    """grade_id -> (source, points) of every autograded code cell of the lesson's solution."""
    nb = nbformat.read(ROOT / "solutions" / lesson / f"{lesson}.ipynb", as_version=4)
    cells = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade"):
            cells[meta["grade_id"]] = (cell.source, float(meta["points"]))
    return cells


@contextlib.contextmanager
def _restored_dtype(torch, dtype):
    try:
        yield
    finally:
        torch.set_default_dtype(dtype)


def grade(lesson: str, setup: str, answer: str, tests: list[str]) -> dict[str, float]:
    """Points each of ``tests`` gives ``answer``; failures are kept on the result for messages."""
    import torch  # the course's only heavy import; seeded so a run is repeatable

    cells = graded_cells(lesson)
    torch.manual_seed(0)
    namespace: dict = {"__name__": "__main__"}
    points: dict[str, float] = {}
    # a lesson's SETUP may change torch's default dtype (lesson 01 runs in float64): restore it
    # so that one lesson's answers never run under another lesson's settings
    default_dtype = torch.get_default_dtype()
    with contextlib.redirect_stdout(io.StringIO()), _restored_dtype(torch, default_dtype):
        exec(compile(setup, f"<{lesson} setup>", "exec"), namespace)
        try:
            exec(compile(answer, f"<{lesson} answer>", "exec"), namespace)
        except Exception:  # an answer that does not even define its function earns nothing
            return {test: 0.0 for test in tests}
        for test in tests:
            source, value = cells[test]
            try:
                exec(compile(source, f"<{lesson} {test}>", "exec"), namespace)
                points[test] = value
            except Exception:
                points[test] = 0.0
    return points
