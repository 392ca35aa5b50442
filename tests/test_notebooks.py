"""Every lesson runs top to bottom: the solutions, and the student versions with their
unsolved exercise cells allowed to raise (nbval, lax)."""
from __future__ import annotations


def test_every_solution_notebook_runs_under_nbval(pipeline):
    result = pipeline.nbval_solutions
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and " failed" not in result.stdout


def test_every_student_version_runs_apart_from_its_exercise_cells(pipeline):
    result = pipeline.nbval_release
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and " failed" not in result.stdout
