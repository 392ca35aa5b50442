"""Run nbgrader on the course in a scratch folder (release, autograde, feedback, scores).

nbgrader writes a gradebook and intermediate folders into its course root, so every command
here copies what it needs into a scratch course first; the repository stays clean.
Used by `make release`, `make grade` and the pipeline tests.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = "solutions"
RELEASE = "lessons"
# A lesson is solutions/NN_name/NN_name.ipynb: two digits, an underscore, a lower-case name.
LESSON_NAME = re.compile(r"[0-9]{2}_[a-z0-9_]+")
# JupyterLab, Colab, nbclient and nbval go on past a cell with this tag when it raises.
MAY_RAISE = "raises-exception"


def lessons(folder: Path | None = None) -> list[str]:
    """Every lesson in ``folder`` (default solutions/), in order: the one rule the Makefile, the
    tests, the release and the run tools share. A lesson folder without its notebook is an error."""
    folder = ROOT / SOURCE if folder is None else folder
    names = sorted(p.name for p in folder.iterdir() if p.is_dir() and LESSON_NAME.fullmatch(p.name))
    broken = [n for n in names if not (folder / n / f"{n}.ipynb").is_file()]
    if broken:
        raise FileNotFoundError(f"lesson folder(s) without their notebook: "
                                f"{', '.join(f'{folder.name}/{n}/{n}.ipynb' for n in broken)}")
    return names


def is_exercise_cell(cell: dict) -> bool:
    """An answer or test code cell (what a student who has not solved the exercise sees raise)."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.get("cell_type") == "code" and bool(meta.get("solution") or meta.get("grade"))


def tag_exercises_may_raise(notebook: Path) -> None:
    """Tag a released notebook's answer and test cells ``raises-exception``, so Run All goes on
    past an unsolved exercise. Grading is unaffected: nbgrader executes every cell whatever its
    tags (allow_errors) and scores test cells by their outputs; the solutions carry no tag."""
    import nbformat  # not at the top: the Makefile runs this file with a bare python3

    nb = nbformat.read(notebook, as_version=nbformat.NO_CONVERT)
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if is_exercise_cell(cell) and MAY_RAISE not in tags:
            cell.metadata["tags"] = [*tags, MAY_RAISE]
    nbformat.write(nb, notebook)


def nbgrader(course: Path, *args: str, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run ``nbgrader args...`` with ``course`` as the course root; output captured."""
    cmd = [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={course}"]
    # nbgrader runs the `alembic` executable, which lives beside this Python (e.g. in .venv/bin)
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = dict(os.environ, PATH=path, PYTHONHASHSEED="0")
    return subprocess.run(cmd, cwd=course, env=env, capture_output=True, text=True, timeout=timeout)


def make_course(course: Path, lessons: dict[str, Path]) -> Path:
    """A scratch course at ``course`` whose source holds ``lessons`` (name -> source folder)."""
    course.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    for name, folder in lessons.items():
        dest = course / SOURCE / name
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(folder, dest, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    return course


def release(course: Path, lesson: str) -> Path:
    """``nbgrader generate_assignment --force`` (without --force nbgrader silently skips), then
    the exercise cells of the student version tagged to let Run All go on past them."""
    result = nbgrader(course, "generate_assignment", lesson, "--force")
    if result.returncode != 0:
        raise RuntimeError(f"releasing {lesson} failed:\n{result.stdout}\n{result.stderr}")
    for notebook in (course / RELEASE / lesson).glob("*.ipynb"):
        tag_exercises_may_raise(notebook)
    return course / RELEASE / lesson


def submit(course: Path, student: str, lesson: str, notebook: Path | str | bytes) -> Path:
    """Place a submission where `nbgrader collect` would: submitted/<student>/<lesson>/<lesson>.ipynb.

    ``notebook`` is a path to copy, or the file's raw content (which may be invalid JSON).
    """
    dest = course / "submitted" / student / lesson / f"{lesson}.ipynb"
    dest.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(notebook, (str, bytes)) and not isinstance(notebook, Path):
        dest.write_bytes(notebook.encode() if isinstance(notebook, str) else notebook)
    else:
        shutil.copy(notebook, dest)
    return dest


def autograde(course: Path, lesson: str, *extra: str) -> subprocess.CompletedProcess:
    """Autograde every submission of ``lesson``; exit code 1 when any submission failed."""
    return nbgrader(course, "autograde", lesson, "--force", *extra)


def feedback(course: Path, lesson: str) -> subprocess.CompletedProcess:
    """HTML feedback for every graded submission (hidden tests stripped, see nbgrader_config.py)."""
    return nbgrader(course, "generate_feedback", lesson, "--force")


@dataclass
class Score:
    student: str
    lesson: str
    auto: float            # points earned on autograded cells
    auto_max: float
    needs_manual: bool     # written answers (and anything nbgrader could not score) await a person
    cells: dict[str, float]  # grade_id -> points earned (autograded cells only)
    graded: bool           # False when autograding failed (e.g. invalid JSON): its zeros mean nothing


def scores(course: Path) -> list[Score]:
    """Scores read through nbgrader's Gradebook API (the export CSV cannot tell errors from zeros)."""
    from nbgrader.api import Gradebook

    out = []
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for assignment in gb.assignments:
            for sub in assignment.submissions:
                cells, auto, auto_max, graded = {}, 0.0, 0.0, True
                for nb in sub.notebooks:
                    for grade in nb.grades:
                        if grade.cell.cell_type == "code":
                            earned = grade.score or 0.0
                            graded &= grade.auto_score is not None
                            cells[grade.name] = earned
                            auto += earned
                            auto_max += grade.max_score
                out.append(Score(sub.student_id, assignment.name, auto, auto_max,
                                 sub.needs_manual_grade, cells, graded))
    return sorted(out, key=lambda s: (s.lesson, s.student))


if __name__ == "__main__":  # the Makefile's list of lessons: python3 tools/nbcourse.py
    print(" ".join(lessons()))
