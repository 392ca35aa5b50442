"""Autograding gives full marks to the solution, 0 to blank work, exact partial marks to wrong
work, and scores every kind of bad submission without stopping the batch."""
from __future__ import annotations

import html
import re

import nbformat
import pytest

from conftest import LESSONS, ROOT, TOY, nbgrader_meta


def autograded_cells(lesson: str) -> dict[str, float]:
    """grade_id -> points of every autograded (code) test cell of the lesson's source."""
    nb = nbformat.read(ROOT / "solutions" / lesson / f"{lesson}.ipynb", as_version=4)
    return {nbgrader_meta(c)["grade_id"]: nbgrader_meta(c)["points"]
            for c in nb.cells if c.cell_type == "code" and nbgrader_meta(c).get("grade")}


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_lesson_has_autograded_exercises_and_a_written_question(lesson):
    nb = nbformat.read(ROOT / "solutions" / lesson / f"{lesson}.ipynb", as_version=4)
    answers = [c for c in nb.cells if c.cell_type == "code" and nbgrader_meta(c).get("solution")]
    written = [c for c in nb.cells if c.cell_type == "markdown" and nbgrader_meta(c).get("grade")]
    assert 2 <= len(answers) <= 4
    assert len(written) == 1
    # every exercise has visible tests and hidden tests, in separate cells so partial credit is exact
    sources = [c.source for c in nb.cells if c.cell_type == "code" and nbgrader_meta(c).get("grade")]
    assert sum("### BEGIN HIDDEN TESTS" in s for s in sources) == len(answers)
    assert sum("### BEGIN HIDDEN TESTS" not in s for s in sources) == len(answers)


@pytest.mark.parametrize("lesson", LESSONS)
def test_solution_earns_every_autograded_point(pipeline, lesson):
    score = pipeline.scores[lesson]["solution"]
    assert score.cells == autograded_cells(lesson), pipeline.autograde[lesson].stderr[-3000:]
    assert score.auto == score.auto_max == sum(autograded_cells(lesson).values())


@pytest.mark.parametrize("lesson", LESSONS)
def test_blank_release_earns_nothing(pipeline, lesson):
    score = pipeline.scores[lesson]["blank"]
    assert set(score.cells) == set(autograded_cells(lesson))
    assert score.auto == 0, score.cells


@pytest.mark.parametrize("lesson", LESSONS)
def test_wrong_answers_earn_exactly_their_expected_partial_scores(pipeline, lesson):
    expected = pipeline.expected[lesson]
    assert set(expected) == set(autograded_cells(lesson)), "the fixture must state a score for every test cell"
    score = pipeline.scores[lesson]["wrong"]
    assert score.cells == expected
    assert 0 < score.auto < score.auto_max


@pytest.mark.parametrize("lesson", LESSONS)
def test_lesson_autograde_batch_succeeds(pipeline, lesson):
    result = pipeline.autograde[lesson]
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]


@pytest.mark.parametrize("lesson", LESSONS)
def test_blank_release_runs_apart_from_its_exercise_cells(pipeline, lesson):
    """An unsolved exercise must not break the rest of the lesson: in the autograded blank
    notebook, only answer and test cells may have raised."""
    path = pipeline.courses[lesson] / "autograded" / "blank" / lesson / f"{lesson}.ipynb"
    nb = nbformat.read(path, as_version=4)
    failed = [c.get("id") for c in nb.cells if c.cell_type == "code"
              and not nbgrader_meta(c).get("solution") and not nbgrader_meta(c).get("grade")
              and any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    assert failed == []
    executed = [c for c in nb.cells if c.cell_type == "code" and c.get("execution_count")]
    assert len(executed) == sum(c.cell_type == "code" for c in nb.cells), "every code cell must have run"


# The toy lesson: 1 visible + 2 hidden points of code, 1 written point (graded by hand).
BAD_SUBMISSIONS = {
    "correct": 3,
    "blank": 0,
    "wrong": 1,               # passes the visible test only
    "infinite_loop": 0,       # the cell times out, the batch goes on
    "import_error": 0,        # the answer cell raises before defining the function
    "tampered_asserts": 1,    # nbgrader restores the original test cells: same as "wrong"
    "deleted_test_cell": 1,   # add_missing_cells puts the hidden test back, and it fails
    "correct_with_warning": 3,  # warnings/logging on stderr: IgnorePattern drops them before scoring
    "displayhook_trick": 0,   # a result shown from inside a test cell is not partial credit
}


def test_bad_submissions_get_their_expected_scores(pipeline):
    scores = pipeline.scores[TOY]
    assert {s: scores[s].auto for s in BAD_SUBMISSIONS if s in scores} == BAD_SUBMISSIONS


def test_invalid_json_fails_alone_and_the_batch_completes(pipeline):
    result = pipeline.autograde[TOY]
    # nbgrader reports the failed submission through its exit code ...
    assert result.returncode == 1
    assert "invalid_json" in result.stdout + result.stderr
    # ... and still grades every other student; its all-zero gradebook entry is marked ungraded
    scores = pipeline.scores[TOY]
    assert {s for s, v in scores.items() if v.graded} == set(BAD_SUBMISSIONS)
    assert not scores["invalid_json"].graded


def test_deleted_test_cell_is_put_back_and_scored(pipeline):
    assert pipeline.scores[TOY]["deleted_test_cell"].cells == {"square_tests": 1, "square_hidden": 0}


def test_written_answers_wait_for_a_person(pipeline):
    assert pipeline.scores[TOY]["correct"].needs_manual


def test_feedback_never_shows_hidden_tests(pipeline):
    assert pipeline.feedback[TOY].returncode == 0, pipeline.feedback[TOY].stderr[-2000:]
    pages = list((pipeline.courses[TOY] / "feedback").rglob("*.html"))
    assert {p.parent.parent.name for p in pages} >= {"correct", "wrong", "blank"}
    for page in pages:
        text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))  # code is split into highlighted spans
        assert "square(3) == 9" in text  # visible tests are shown
        assert "square(-2.5)" not in text and "HIDDEN TESTS" not in text
        # a failing hidden test is reported, without its traceback (which would quote it)
        if page.parent.parent.name == "wrong":
            assert "Hidden tests failed (AssertionError)" in text
