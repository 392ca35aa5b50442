"""Shared fixtures. The notebook pipeline (release, autograde) runs once per session, its
independent jobs two at a time (the CI machine has 2 cores); tests then read the results.
Each lesson is executed three times: autograding its solution, its blank student version and
its wrong-answer fixture; the tests read the executed notebooks instead of running them again.
"""
from __future__ import annotations

import copy
import json
import os
import runpy
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import nbcourse  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
ALL_LESSONS = nbcourse.lessons()
LESSONS = ALL_LESSONS
if os.environ.get("BDL_LESSONS"):  # while writing a lesson: BDL_LESSONS=03_full_bnn pytest tests/...
    LESSONS = [name for name in LESSONS if name in os.environ["BDL_LESSONS"].split(",")]
TOY = "00_grading_fixture"
TOY_TIMEOUT = 5  # seconds per cell in the toy course, so the infinite loop costs little

# Pipeline jobs run two at a time on 2 cores; torch's default of one thread per core would
# oversubscribe them (tiny networks, spinning threads: several times slower). One each.
os.environ["OMP_NUM_THREADS"] = "1"

if not os.environ.get("BDL_COURSE_DATA") and (ROOT.parent / "shared" / "data").is_dir():
    os.environ["BDL_COURSE_DATA"] = str(ROOT.parent / "shared" / "data")


# ---------------------------------------------------------------- helpers of the package's unit tests

F64 = torch.float64


def randomised(layer, seed: int = 0, rho_shift: float = 0.0):
    """Give every parameter of ``layer`` a distinct random value (so sums cannot agree by symmetry);
    ``rho_shift`` moves the rho parameters (``sigma = softplus(rho)``), e.g. -1.0 for smaller stds."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in layer.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) + (rho_shift if name.endswith("rho") else 0.0))
    return layer


def nbgrader_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def with_answers(release: Path, answers: dict[str, str]) -> nbformat.NotebookNode:
    """The released notebook with the given answer cells (by grade_id) replaced."""
    nb = nbformat.read(release, as_version=4)
    seen = set()
    for cell in nb.cells:
        grade_id = nbgrader_meta(cell).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id].strip("\n")
            seen.add(grade_id)
    missing = set(answers) - seen
    assert not missing, f"fixture names answer cells the lesson does not have: {missing}"
    return nb


def wrong_answers(lesson: str) -> dict:
    return runpy.run_path(str(FIXTURES / "wrong_answers" / f"{lesson}.py"))


def toy_submissions(release: Path, solution: Path) -> dict[str, object]:
    """Every kind of bad submission, built from the toy lesson's release."""
    wrong = "def square(x):\n    return abs(x) * 3  # right for 3 only"

    def edited(transform):
        nb = nbformat.read(release, as_version=4)
        transform(nb)
        return nbformat.writes(nb)

    def tamper(nb):  # a wrong answer, and test cells rewritten to pass anything
        for cell in nb.cells:
            meta = nbgrader_meta(cell)
            if meta.get("solution") and cell.cell_type == "code":
                cell.source = wrong
            if meta.get("grade") and cell.cell_type == "code":
                cell.source = "assert True"

    def delete_hidden(nb):  # a wrong answer, and the (hidden) test cell that catches it deleted
        for cell in nb.cells:
            if nbgrader_meta(cell).get("solution") and cell.cell_type == "code":
                cell.source = wrong
        nb.cells = [c for c in nb.cells if nbgrader_meta(c).get("grade_id") != "square_hidden"]

    return {
        "correct": solution,
        "blank": release,
        "wrong": nbformat.writes(with_answers(release, {"square_answer": wrong})),
        "invalid_json": '{"cells": [ this is not JSON',
        "infinite_loop": nbformat.writes(with_answers(release, {"square_answer": "def square(x):\n    while True:\n        pass"})),
        "import_error": nbformat.writes(with_answers(release, {"square_answer": "import a_module_that_does_not_exist\n\ndef square(x):\n    return x * x"})),
        "tampered_asserts": edited(tamper),
        "deleted_test_cell": edited(delete_hidden),
        # right, but noisy: stderr output in the test cells must not cost the points
        "correct_with_warning": nbformat.writes(with_answers(release, {"square_answer": (
            "import logging, sys, warnings\n\ndef square(x):\n    warnings.warn('squaring')\n"
            "    logging.warning('squaring %s', x)\n    print('debug', file=sys.stderr)\n    return x * x")})),
        # nbgrader would read the result shown from inside the test as its partial-credit score
        "displayhook_trick": nbformat.writes(with_answers(release, {"square_answer": (
            "import sys\n\ndef square(x):\n    sys.displayhook(1)\n    return 0")})),
    }


class Pipeline:
    """Results of one run of the whole notebook pipeline, shared by the tests."""

    def __init__(self, scratch: Path):
        self.scratch = scratch
        self.courses: dict[str, Path] = {}
        self.autograde: dict[str, subprocess.CompletedProcess] = {}
        self.scores: dict[str, dict[str, nbcourse.Score]] = {}
        self.feedback: dict[str, subprocess.CompletedProcess] = {}
        self.expected: dict[str, dict] = {}

    def grade_lesson(self, lesson: str) -> None:
        course = nbcourse.make_course(self.scratch / lesson, {lesson: ROOT / "solutions" / lesson})
        release = nbcourse.release(course, lesson) / f"{lesson}.ipynb"
        solution = ROOT / "solutions" / lesson / f"{lesson}.ipynb"
        fixture = wrong_answers(lesson)
        self.expected[lesson] = fixture["EXPECTED"]
        nbcourse.submit(course, "solution", lesson, solution)
        # the committed student version, as a student who changed nothing would hand it in
        nbcourse.submit(course, "blank", lesson, ROOT / "lessons" / lesson / f"{lesson}.ipynb")
        nbcourse.submit(course, "wrong", lesson, nbformat.writes(with_answers(release, fixture["ANSWERS"])))
        self._grade(course, lesson)

    def grade_toy(self) -> None:
        course = nbcourse.make_course(self.scratch / TOY, {TOY: FIXTURES / TOY})
        release = nbcourse.release(course, TOY) / f"{TOY}.ipynb"
        for student, notebook in toy_submissions(release, FIXTURES / TOY / f"{TOY}.ipynb").items():
            nbcourse.submit(course, student, TOY, notebook)
        self._grade(course, TOY, f"--Execute.timeout={TOY_TIMEOUT}")
        self.feedback[TOY] = nbcourse.feedback(course, TOY)

    def _grade(self, course: Path, lesson: str, *extra: str) -> None:
        self.courses[lesson] = course
        self.autograde[lesson] = nbcourse.autograde(course, lesson, *extra)
        self.scores[lesson] = {s.student: s for s in nbcourse.scores(course)}

    def run_release(self) -> None:
        out = self.scratch / "regenerated"
        self.release_run = subprocess.run([sys.executable, str(ROOT / "tools" / "release.py"), "--out", str(out)],
                                          capture_output=True, text=True)
        self.regenerated = out


def missing_fixtures(lessons: list[str]) -> list[str]:
    return [f"tests/fixtures/wrong_answers/{name}.py" for name in lessons
            if not (FIXTURES / "wrong_answers" / f"{name}.py").is_file()]


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory) -> Pipeline:
    # before minutes of autograding, not after: a new lesson needs its wrong-answer fixture
    if missing_fixtures(LESSONS):
        pytest.fail(f"missing wrong-answer fixture(s): {', '.join(missing_fixtures(LESSONS))} "
                    "(ANSWERS and EXPECTED, see CONTRIBUTING.md)", pytrace=False)
    result = Pipeline(tmp_path_factory.mktemp("pipeline"))
    jobs = [result.grade_toy, result.run_release] + [lambda name=name: result.grade_lesson(name) for name in LESSONS]
    # the slowest jobs first, so the two workers finish together
    jobs = jobs[2:][::-1] + jobs[:2]
    with ThreadPoolExecutor(max_workers=2) as pool:
        for future in [pool.submit(job) for job in jobs]:
            future.result()
    return result
