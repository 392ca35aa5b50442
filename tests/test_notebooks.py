"""Every lesson runs top to bottom: the solution without a single error, and the student
version through its unsolved exercises (Run All in JupyterLab and Colab goes on past them).

No lesson is executed here: the tests read the notebooks the pipeline's autograding executed
(solution and blank student version), so a lesson runs three times per `make test`, not five.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from conftest import LESSONS, ROOT, nbcourse


def autograded(pipeline, student: str, lesson: str) -> nbformat.NotebookNode:
    return nbformat.read(pipeline.courses[lesson] / "autograded" / student / lesson / f"{lesson}.ipynb", as_version=4)


def errors(cell) -> list[str]:
    return [f"{o.ename}: {o.evalue}" for o in cell.get("outputs", []) if o.get("output_type") == "error"]


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_solution_runs_top_to_bottom_without_an_error(pipeline, lesson):
    nb = autograded(pipeline, "solution", lesson)
    code = [c for c in nb.cells if c.cell_type == "code"]
    failed = {c.get("id"): errors(c) for c in code if errors(c)}
    assert failed == {}, pipeline.autograde[lesson].stderr[-3000:]
    assert all(c.get("execution_count") for c in code), "every code cell of the solution must have run"


@pytest.mark.parametrize("lesson", LESSONS)
def test_only_the_exercise_cells_of_a_student_version_may_raise(lesson):
    """Run All (JupyterLab, Colab, nbclient) stops at the first error unless the cell is tagged
    `raises-exception`: every answer and test cell must carry the tag, and no other cell may
    (a tag there would hide a lesson that breaks)."""
    nb = nbformat.read(ROOT / "lessons" / lesson / f"{lesson}.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    tagged = {c.id for c in code if nbcourse.MAY_RAISE in c.metadata.get("tags", [])}
    exercises = {c.id for c in code if nbcourse.is_exercise_cell(c)}
    assert exercises and tagged == exercises, "lessons/ is out of date: run `make release` and commit"


@pytest.mark.parametrize("lesson", LESSONS)
def test_the_solutions_carry_no_raises_exception_tag(lesson):
    """The solution is run as is and must not raise anywhere, its exercise cells included."""
    nb = nbformat.read(ROOT / "solutions" / lesson / f"{lesson}.ipynb", as_version=4)
    assert not [c.id for c in nb.cells if nbcourse.MAY_RAISE in c.metadata.get("tags", [])]


def test_run_all_goes_on_past_an_unsolved_exercise(tmp_path):
    """The tag does what the release relies on, in the executor JupyterLab's own Run All follows
    (nbclient, errors not allowed): the toy lesson's release runs to its last cell."""
    from nbclient import NotebookClient

    toy = ROOT / "tests" / "fixtures" / "00_grading_fixture"
    course = nbcourse.make_course(tmp_path, {"00_grading_fixture": toy})
    nb = nbformat.read(nbcourse.release(course, "00_grading_fixture") / "00_grading_fixture.ipynb", as_version=4)
    NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=False).execute()
    code = {c.id: c for c in nb.cells if c.cell_type == "code"}
    assert all(c.execution_count for c in code.values())
    assert {i for i, c in code.items() if errors(c)} == {"square_tests"}  # the answer stub defines square; its body raises when called
    assert "the rest of the lesson runs: 4.0" in code["after"].outputs[0].text


def test_tags_a_student_strips_or_adds_change_no_score(tmp_path):
    """nbgrader runs every cell whatever its tags and scores test cells by their outputs: a blank
    tagged release earns 0, and stripping the tags or tagging every cell changes no score."""
    toy = ROOT / "tests" / "fixtures" / "00_grading_fixture"
    course = nbcourse.make_course(tmp_path, {"00_grading_fixture": toy})
    release = nbcourse.release(course, "00_grading_fixture") / "00_grading_fixture.ipynb"
    solution = toy / "00_grading_fixture.ipynb"
    wrong = "def square(x):\n    return abs(x) * 3"

    def submission(source: Path, tags, answer: str | None = None) -> str:
        nb = nbformat.read(source, as_version=4)
        for cell in nb.cells:
            if answer and cell.get("id") == "square_answer":
                cell.source = answer
            cell.metadata["tags"] = tags(cell)
        return nbformat.writes(nb)

    every = lambda cell: [nbcourse.MAY_RAISE]  # noqa: E731
    none = lambda cell: []  # noqa: E731
    expected = {"blank": 0, "blank_untagged": 0, "wrong_untagged": 1, "wrong_all_tagged": 1,
                "solution_all_tagged": 3}
    for student, notebook in {
        "blank": release, "blank_untagged": submission(release, none),
        "wrong_untagged": submission(release, none, wrong), "wrong_all_tagged": submission(release, every, wrong),
        "solution_all_tagged": submission(solution, every),
    }.items():
        nbcourse.submit(course, student, "00_grading_fixture", notebook)
    result = nbcourse.autograde(course, "00_grading_fixture")
    assert result.returncode == 0, result.stderr[-3000:]
    assert {s.student: s.auto for s in nbcourse.scores(course)} == expected
