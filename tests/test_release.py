"""lessons/ is exactly what nbgrader generates from solutions/ (`make release`)."""
from __future__ import annotations

import filecmp

import nbformat

from conftest import ALL_LESSONS, LESSONS, ROOT, nbcourse, nbgrader_meta


def files(folder):
    return sorted(p.relative_to(folder) for p in folder.rglob("*")
                  if p.is_file() and ".ipynb_checkpoints" not in p.parts)


def test_regenerating_the_release_reproduces_lessons_exactly(pipeline):
    assert pipeline.release_run.returncode == 0, pipeline.release_run.stderr[-3000:]
    committed, regenerated = ROOT / "lessons", pipeline.regenerated
    assert files(committed) == files(regenerated)
    differing = [str(p) for p in files(committed) if not filecmp.cmp(committed / p, regenerated / p, shallow=False)]
    assert differing == [], "lessons/ is out of date: run `make release` and commit"


def test_every_lesson_has_a_student_version():
    # all lessons, even when BDL_LESSONS narrows the slow tests to a few
    assert ALL_LESSONS and ALL_LESSONS == nbcourse.lessons(ROOT / "lessons")


def test_student_versions_hold_no_solutions_or_hidden_tests():
    for name in LESSONS:
        text = (ROOT / "lessons" / name / f"{name}.ipynb").read_text()
        assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text


def test_committed_notebooks_have_no_outputs_and_valid_nbgrader_metadata():
    from nbgrader.nbgraderformat import MetadataValidator

    for folder in ("solutions", "lessons"):
        for name in LESSONS:
            nb = nbformat.read(ROOT / folder / name / f"{name}.ipynb", as_version=4)
            MetadataValidator().validate_nb(nb)
            ids = [c.get("id") for c in nb.cells]
            assert all(ids) and len(set(ids)) == len(ids), "cells need unique, stable ids"
            for cell in nb.cells:
                if cell.cell_type == "code":
                    assert cell.outputs == [] and cell.execution_count is None, f"{folder}/{name}: clear outputs"
                    assert "nbgrader" not in cell.metadata or nbgrader_meta(cell)["grade_id"]
