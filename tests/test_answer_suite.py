"""Every exercise's tests give full marks to every correct answer in the suite and exactly the
stated (lower) points to every plausible wrong one (tests/answer_suite.py describes the files)."""
from __future__ import annotations

import pytest

from answer_suite import answer_files, grade, load, graded_cells

LESSONS = sorted(answer_files())


def cases(kind: str):
    for lesson in LESSONS:
        suite = load(lesson)
        for answer_id, exercise in suite["EXERCISES"].items():
            for i, entry in enumerate(exercise[kind]):
                yield pytest.param(lesson, answer_id, i, id=f"{lesson}-{answer_id}-{kind}{i}")


def exercise(lesson: str, answer_id: str) -> tuple[str, dict]:
    suite = load(lesson)
    ex = suite["EXERCISES"][answer_id]
    return suite["SETUP"] + "\n" + ex.get("setup", ""), ex


@pytest.mark.parametrize("lesson", LESSONS)
def test_suite_covers_every_exercise_with_enough_answers(lesson):
    suite = load(lesson)
    graded = graded_cells(lesson)
    covered = {t for ex in suite["EXERCISES"].values() for t in ex["tests"]}
    assert covered == set(graded), f"test cells without answers: {set(graded) - covered}"
    for answer_id, ex in suite["EXERCISES"].items():
        assert len(ex["correct"]) >= 3, f"{answer_id}: at least 3 correct answers written differently"
        assert len(ex["wrong"]) >= 5, f"{answer_id}: at least 5 plausible wrong answers"
        assert len(set(ex["correct"])) == len(ex["correct"]), f"{answer_id}: duplicate correct answers"


@pytest.mark.parametrize("lesson, answer_id, index", list(cases("correct")))
def test_every_correct_answer_earns_full_marks(lesson, answer_id, index):
    setup, ex = exercise(lesson, answer_id)
    points = grade(lesson, setup, ex["correct"][index], ex["tests"])
    full = {t: graded_cells(lesson)[t][1] for t in ex["tests"]}
    assert points == full, f"correct answer {index} misgraded:\n{ex['correct'][index]}"


@pytest.mark.parametrize("lesson, answer_id, index", list(cases("wrong")))
def test_every_wrong_answer_earns_exactly_its_stated_points(lesson, answer_id, index):
    setup, ex = exercise(lesson, answer_id)
    source, expected = ex["wrong"][index]
    full = sum(graded_cells(lesson)[t][1] for t in ex["tests"])
    assert set(expected) == set(ex["tests"]), "state the points of every test cell of the exercise"
    assert sum(expected.values()) < full, "a wrong answer must lose points"
    points = grade(lesson, setup, source, ex["tests"])
    assert points == {t: float(p) for t, p in expected.items()}, f"wrong answer {index}:\n{source}"
