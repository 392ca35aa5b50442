"""Autograde a term's submissions: every notebook in a sandbox, in parallel, checked by a
trusted step; a grades CSV, HTML feedback and an instructor report.

    python tools/grade.py SUBMISSIONS [--out build/grading] [--workers N | --scheduler ADDRESS]
    python tools/grade.py --feedback-only [--out build/grading]   (after marking in Formgrader)

SUBMISSIONS (never modified) is any of
  - nbgrader's layout:  SUBMISSIONS/<student>/<lesson>/<lesson>.ipynb   (what `nbgrader collect` leaves;
    a top folder named `submitted/` is looked through);
  - flat folders:       SUBMISSIONS/<lesson>/<student>.ipynb, or SUBMISSIONS itself named <lesson>/;
  - a .zip of either.
A misnamed, broken, duplicate or symlinked entry is reported by name ("could not grade: why")
and everyone else is graded. Reruns give the same results: OUT/course is rebuilt except its
gradebook.db, so written answers already marked in Formgrader are kept.

Writes OUT/grades.csv (one row per student and lesson), OUT/report.html (plots, flagged and
ungraded lists), OUT/course/feedback/<student>/<lesson>/ (HTML without hidden tests, made from
the gradebook once every submission is graded), and OUT/course/, an nbgrader course the
instructor opens with Formgrader to mark written answers; `--feedback-only` then rewrites the
feedback with those marks.
Exit status: 0 when every entry was graded and none flagged, 1 otherwise (the batch always completes).
See docs/INSTRUCTORS.md (term workflow, limits, threat model).
"""
from __future__ import annotations

import argparse
import base64
import copy
import csv
import html
import io
import json
import os
import re
import shutil
import stat
import sys
import time
import traceback
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nbcourse  # noqa: E402
import sandbox  # noqa: E402

STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}")
MAX_NOTEBOOK_BYTES = 64 * 2**20
IGNORED_PARTS = {"__MACOSX", ".ipynb_checkpoints", "__pycache__"}


# --------------------------------------------------------------------------------------------
# Reading the input (a folder or a zip), never following links, never writing
# --------------------------------------------------------------------------------------------

@dataclass
class Item:
    parts: tuple[str, ...]      # path inside the input
    kind: str                   # "file", "link" or "other"
    size: int
    read: object = None         # () -> bytes


def _scan_folder(root: Path) -> list[Item]:
    items = []

    def walk(folder: Path, parts: tuple[str, ...]):
        with os.scandir(folder) as it:
            for entry in sorted(it, key=lambda e: e.name):
                sub = (*parts, entry.name)
                if entry.is_symlink():
                    items.append(Item(sub, "link", 0))
                elif entry.is_dir(follow_symlinks=False):
                    walk(Path(entry.path), sub)
                elif entry.is_file(follow_symlinks=False):
                    path = entry.path

                    def read(path=path):
                        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
                        with os.fdopen(fd, "rb") as f:
                            return f.read(MAX_NOTEBOOK_BYTES + 1)
                    items.append(Item(sub, "file", entry.stat(follow_symlinks=False).st_size, read))
                else:
                    items.append(Item(sub, "other", 0))
    walk(root, ())
    return items


def _scan_zip(path: Path) -> list[Item]:
    items = []
    archive = zipfile.ZipFile(path)
    for info in archive.infolist():
        name = PurePosixPath(info.filename)
        if info.is_dir():
            continue
        parts = tuple(p for p in name.parts if p not in ("", "."))
        mode = info.external_attr >> 16
        if name.is_absolute() or ".." in parts:
            items.append(Item(parts or (info.filename,), "other", 0))
        elif stat.S_ISLNK(mode):
            items.append(Item(parts, "link", 0))
        else:
            items.append(Item(parts, "file", info.file_size,
                              lambda info=info: archive.open(info).read(MAX_NOTEBOOK_BYTES + 1)))
    return items


@dataclass
class Entry:
    student: str
    lesson: str
    origin: str                 # where in the input it came from
    read: object = None
    problem: str | None = None  # set: reported, not graded


def collect(path: Path, lessons: set[str]) -> tuple[list[Entry], list[Entry]]:
    """(submissions found, problems found); a problem names its entry and why."""
    if path.is_file() and zipfile.is_zipfile(path):
        items, root_name = _scan_zip(path), path.stem
    elif path.is_dir() and not path.is_symlink():
        items, root_name = _scan_folder(path), path.name
    else:
        raise SystemExit(f"grade.py: {path} is neither a folder nor a zip file")
    items = [i for i in items if not any(p.startswith(".") or p in IGNORED_PARTS for p in i.parts)]
    # look through one wrapping folder: `submitted/`, or a zip's folder named like the zip
    tops = {i.parts[0] for i in items if len(i.parts) > 1} | {"<file>" for i in items if len(i.parts) == 1}
    if len(tops) == 1 and (top := next(iter(tops))) in ("submitted", root_name) and top not in lessons:
        items = [Item(i.parts[1:], i.kind, i.size, i.read) for i in items]
    if any(len(i.parts) == 1 and i.parts[0].endswith(".ipynb") for i in items) and root_name in lessons:
        items = [Item((root_name, *i.parts), i.kind, i.size, i.read) for i in items]

    found: dict[tuple[str, str], Entry] = {}
    problems: list[Entry] = []

    def problem(student, lesson, origin, why):
        problems.append(Entry(student or "?", lesson or "?", origin, problem=why))

    for item in items:
        origin = "/".join(item.parts)
        parts = item.parts
        if parts[0] in lessons:  # flat: <lesson>/<student>.ipynb
            lesson = parts[0]
            student = parts[-1][:-len(".ipynb")] if parts[-1].endswith(".ipynb") else None
            if len(parts) != 2 or student is None:
                if parts[-1].endswith(".ipynb"):
                    problem(None, lesson, origin, "a notebook in a subfolder of a lesson folder "
                            "(expected <lesson>/<student>.ipynb)")
                continue
        else:  # nbgrader: <student>/<lesson>/<lesson>.ipynb
            student = parts[0]
            if len(parts) < 3:
                if parts[-1].endswith(".ipynb") or item.kind == "link":
                    problem(student if len(parts) > 1 else None, None, origin,
                            "not where a submission goes (expected <student>/<lesson>/<lesson>.ipynb "
                            "or <lesson>/<student>.ipynb)")
                continue
            lesson = parts[1]
            if lesson not in lessons:
                if (student, lesson) not in {(p.student, p.origin.split("/")[1] if "/" in p.origin else "")
                                             for p in problems}:
                    problem(student, lesson, "/".join(parts[:2]),
                            f"unknown lesson folder {lesson!r} (the lessons are: {', '.join(sorted(lessons))})")
                continue
            if len(parts) != 3 or parts[2] != f"{lesson}.ipynb":
                if parts[-1].endswith(".ipynb"):
                    problem(student, lesson, origin, f"misnamed: expected {student}/{lesson}/{lesson}.ipynb")
                continue  # other files beside a notebook (e.g. a torch.py) are never used
        if not STUDENT_ID.fullmatch(student or ""):
            problem(student, lesson, origin, "not a valid student id (letters, digits and _.@+- only)")
            continue
        if item.kind == "link":
            problem(student, lesson, origin, "a symbolic link (refused: only regular files are read)")
            continue
        if item.kind != "file":
            problem(student, lesson, origin, "not a regular file")
            continue
        if item.size > MAX_NOTEBOOK_BYTES:
            problem(student, lesson, origin, f"over {MAX_NOTEBOOK_BYTES // 2**20} MB")
            continue
        if (student, lesson) in found:
            problem(student, lesson, origin, f"a second submission for this lesson (also {found[student, lesson].origin})")
            continue
        found[student, lesson] = Entry(student, lesson, origin, item.read)
    return sorted(found.values(), key=lambda e: (e.lesson, e.student)), problems


# --------------------------------------------------------------------------------------------
# Trusted normalisation: BOM, invalid JSON, stripped metadata
# --------------------------------------------------------------------------------------------

def normalise(data: bytes, release) -> tuple[object, list[str]]:
    """The submission as a notebook (nbgrader metadata restored from the release), and notes.
    Raises ValueError with the reason when it is not a notebook."""
    import nbformat

    notes = []
    if len(data) > MAX_NOTEBOOK_BYTES:
        raise ValueError(f"over {MAX_NOTEBOOK_BYTES // 2**20} MB")
    if data.startswith(b"\xef\xbb\xbf"):
        data, _ = data[3:], notes.append("a byte-order mark was removed")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"not UTF-8 text ({error})") from None
    try:
        raw = json.loads(text)
    except ValueError as error:
        raise ValueError(f"invalid JSON ({error})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list):
        raise ValueError("not a notebook (no list of cells)")
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as error:  # noqa: BLE001  (nbformat raises several kinds)
        raise ValueError(f"not a readable notebook ({type(error).__name__}: {error})") from None
    by_id = {c.get("id"): c for c in release.cells if c.metadata.get("nbgrader")}
    by_source = {c.source: c for c in release.cells if c.metadata.get("nbgrader", {}).get("locked")}
    grade_ids = {c.metadata.nbgrader.get("grade_id") for c in release.cells if c.metadata.get("nbgrader")}
    restored = 0
    for cell in nb.cells:
        if not isinstance(cell.get("metadata"), dict):
            cell["metadata"] = nbformat.NotebookNode()
        meta = cell.metadata.get("nbgrader")
        if meta is not None and meta.get("grade_id") not in grade_ids:
            del cell.metadata["nbgrader"]  # a cell the course does not have cannot claim points
            notes.append(f"nbgrader metadata of an unknown cell ({meta.get('grade_id')!r}) was ignored")
            meta = None
        if meta is None:
            twin = by_id.get(cell.get("id")) or by_source.get(cell.get("source"))
            if twin is not None and twin.cell_type == cell.cell_type:
                cell.metadata["nbgrader"] = copy.deepcopy(twin.metadata.nbgrader)
                restored += 1
    if restored:
        notes.append(f"nbgrader metadata of {restored} cell(s) was missing and was restored from the release")
    # one cell per grade_id: the first keeps it
    seen = set()
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid is not None and gid in seen:
            del cell.metadata["nbgrader"]
        seen.add(gid)
    nb.metadata["kernelspec"] = copy.deepcopy(release.metadata.get("kernelspec", {}))
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as error:
        raise ValueError(f"not a valid notebook after repair ({str(error).splitlines()[0]})") from None
    return nb, notes


# --------------------------------------------------------------------------------------------
# One submission (runs on a Dask worker): nbgrader autograde with the sandboxed Execute
# --------------------------------------------------------------------------------------------

def _quiet() -> None:
    """nbgrader's API warns about its own SQLAlchemy use and about old notebooks: noise here."""
    import warnings
    warnings.filterwarnings("ignore", message=".*not in session.*")
    warnings.filterwarnings("ignore", message=".*missing an id field.*")
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def nbgrader_api(course: Path, overrides: dict | None = None):
    """nbgrader's API on the course folder ``course`` with its nbgrader_config.py, plus
    ``overrides`` ({section: {trait: value}})."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    config.CourseDirectory.root = str(course)
    for section, values in (overrides or {}).items():
        for name, value in values.items():
            setattr(config[section], name, value)
    return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)


def grade_submission(task: dict) -> dict:
    """Autograde one submission in a private scratch course; returns what the grader needs."""
    import tempfile

    _quiet()
    start = time.monotonic()
    lesson, student = task["lesson"], task["student"]
    out = {"lesson": lesson, "student": student, "ok": False, "flags": [], "error": "", "log": ""}
    tmp = Path(tempfile.mkdtemp(prefix="bdl-grade-"))
    try:
        course = tmp / "course"  # never visible to the sandbox (its folder is tmp/sandboxes/...)
        for rel, data in task["course"].items():
            (course / rel).parent.mkdir(parents=True, exist_ok=True)
            (course / rel).write_bytes(data)
        submitted = course / "submitted" / student / lesson / f"{lesson}.ipynb"
        submitted.parent.mkdir(parents=True)
        submitted.write_text(task["notebook"])
        api = nbgrader_api(course, {"Autograde": {"autograde_preprocessors": sandbox.autograde_preprocessors()},
                                    "SandboxExecute": {
                                        "limits": task["limits"], "scratch_root": str(tmp / "sandboxes"),
                                        "figures": task["figures"],
                                        "source_notebook": str(course / nbcourse.SOURCE / lesson / f"{lesson}.ipynb")}})
        sandbox.REPORTS.pop((lesson, student), None)
        result = api.autograde(lesson, student, force=True, create=True)
        report = sandbox.REPORTS.pop((lesson, student), {})
        out["flags"] = list(dict.fromkeys(report.get("flags", [])))
        out["sandbox_seconds"] = report.get("seconds")
        out["log"] = result.get("log", "")[-20000:]
        graded = course / "autograded" / student / lesson / f"{lesson}.ipynb"
        if result.get("success") and graded.is_file():
            out["ok"], out["notebook"] = True, graded.read_text()
        else:
            error = (result.get("error") or "") + "\n" + out["log"]
            found = re.findall(r"^\s*(?:[\w.]+\.)?(\w*(?:Error|Exception)): (.+)$", error, flags=re.M)
            found = [(kind, why) for kind, why in found if kind != "NbGraderException"]
            reason = (found[-1][1] if found[-1][0] == "SandboxError" else f"{found[-1][0]}: {found[-1][1]}") \
                if found else "nbgrader failed (see the traceback)"
            out["error"], out["traceback"] = reason, (error or out["log"])[-20000:]
    except Exception as error:  # noqa: BLE001  (reported for this student; the batch goes on)
        out["error"], out["traceback"] = f"{type(error).__name__}: {error}", traceback.format_exc()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        out["seconds"] = time.monotonic() - start
    return out


# --------------------------------------------------------------------------------------------
# The trusted grader: course, gradebook, CSV, feedback, report
# --------------------------------------------------------------------------------------------

def exercises(source) -> list[tuple[str, list[str]]]:
    """[(exercise, [test grade_ids])]: the test cells that follow each answer cell."""
    out: list[tuple[str, list[str]]] = []
    for cell in source.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("solution"):
            out.append((re.sub(r"_answer$", "", meta["grade_id"]), []))
        elif sandbox.is_test_cell(cell) and out:
            out[-1][1].append(meta["grade_id"])
    return out


@dataclass
class Row:
    lesson: str
    student: str
    origin: str = ""
    status: str = ""            # graded | flagged | could not grade
    reason: str = ""
    cells: dict = field(default_factory=dict)    # test grade_id -> (points, max)
    written: str = ""
    notes: list = field(default_factory=list)
    traceback: str = ""
    seconds: float | None = None


def test_cell_points(nb) -> dict[str, tuple[float, float]]:
    from nbgrader.utils import determine_grade
    return {c.metadata.nbgrader["grade_id"]: determine_grade(c) for c in nb.cells if sandbox.is_test_cell(c)}


SELF_CHECK = "instructor-solution-check"  # the student id the lesson's own solution is graded under


def solution_problem(result: dict) -> str:
    """Why a lesson's own solution, graded in the sandbox, does not earn every point ('' if it does)."""
    import nbformat

    if not result.get("ok"):
        return f"could not be graded ({result.get('error') or 'unknown error'})"
    nb = nbformat.reads(result["notebook"], as_version=4)
    cells = test_cell_points(nb)
    got, full = sum(p or 0 for p, _ in cells.values()), sum(m for _, m in cells.values())
    if result.get("flags"):
        return f"was flagged ({'; '.join(result['flags'])[:300]})"
    if got >= full:
        return ""
    errors = [f"cell {i}: {o.ename}: {str(o.evalue)[:200]}" for i, c in enumerate(nb.cells) if c.cell_type == "code"
              for o in c.get("outputs", []) if o.get("output_type") == "error"]
    return f"scores {got:g}/{full:g}" + (f" (first error: {errors[0]})" if errors else "")


def written_status(nb) -> str:
    from nbgrader.utils import determine_grade
    cells = [c for c in nb.cells if c.cell_type == "markdown" and c.metadata.get("nbgrader", {}).get("grade")]
    todo = [c.metadata.nbgrader["grade_id"] for c in cells if determine_grade(c)[0] is None]
    if not cells:
        return ""
    return f"to mark: {', '.join(todo)}" if todo else "no written answer"


def save_to_gradebook(course: Path, lesson: str, student: str, nb, flagged: bool) -> None:
    """The trusted process writes the course gradebook (nbgrader's own SaveAutoGrades)."""
    from nbgrader.api import Gradebook
    from nbgrader.preprocessors import SaveAutoGrades

    db_url = f"sqlite:///{course / 'gradebook.db'}"
    with Gradebook(db_url) as gb:
        gb.update_or_create_student(student)
        gb.update_or_create_submission(lesson, student)
    if nb is not None:
        SaveAutoGrades().preprocess(copy.deepcopy(nb), {"nbgrader": {
            "notebook": lesson, "assignment": lesson, "student": student, "db_url": db_url}})
    if flagged or nb is None:  # Formgrader lists them as needing a person
        with Gradebook(db_url) as gb:
            for grade in gb.find_submission_notebook(lesson, lesson, student).grades:
                grade.needs_manual_grade = True
            gb.db.commit()


def write_feedback(course: Path, lesson: str) -> dict[str, str]:
    """nbgrader's feedback pages for every autograded notebook of ``lesson`` in ``course``, from
    the course's own gradebook (so marks and comments entered in Formgrader are in them); hidden
    tests are stripped (nbgrader_config.py). One nbgrader call per lesson, in the trusted process:
    no student code runs here, nbconvert only renders the notebook. Returns {student: why} for
    each autograded student whose page was not written."""
    _quiet()
    made = nbgrader_api(course).generate_feedback(lesson, force=True)
    why = next((line for line in reversed((made.get("error") or made.get("log") or "").splitlines())
                if line.strip()), "nbgrader's generate_feedback failed")
    graded = sorted(p.parent.parent.name for p in (course / "autograded").glob(f"*/{lesson}/{lesson}.ipynb"))
    return {student: why for student in graded
            if not (course / "feedback" / student / lesson / f"{lesson}.html").is_file()}


def make_client(args):
    from distributed import Client, LocalCluster

    if args.scheduler:
        return Client(args.scheduler), None
    tools = str(Path(__file__).resolve().parent)
    os.environ["PYTHONPATH"] = os.pathsep.join([tools, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, memory_limit=0, silence_logs=40)
    return Client(cluster), cluster


def make_task(template: dict, source: Path, lesson: str, student: str, notebook: str, limits,
              figures: bool = False) -> dict:
    """What a worker needs to grade one submission (see grade_submission)."""
    files = {**template, f"{nbcourse.SOURCE}/{lesson}/{lesson}.ipynb": (source / f"{lesson}.ipynb").read_bytes()}
    return {"lesson": lesson, "student": student, "notebook": notebook, "course": files, "limits": vars(limits),
            "figures": figures}


def course_template(course: Path) -> dict:
    """The files of a released scratch course a worker copies (config and gradebook)."""
    return {name: (course / name).read_bytes() for name in ("nbgrader_config.py", "gradebook.db")
            if (course / name).is_file()}


def grade(args) -> tuple[list[Row], Path, dict]:
    import nbformat

    lessons = set(nbcourse.lessons()) | set(args.extra_lesson)
    sources = {name: nbcourse.ROOT / nbcourse.SOURCE / name for name in nbcourse.lessons()}
    for folder in args.extra_lesson_dir:  # e.g. the toy lesson of the tests
        sources[folder.name] = folder
        lessons.add(folder.name)
    entries, problems = collect(args.submissions, lessons)
    used = sorted({e.lesson for e in entries} | {p.lesson for p in problems if p.lesson in lessons})
    out = args.out
    course = out / "course"
    keep_db = (course / "gradebook.db").read_bytes() if (course / "gradebook.db").is_file() else None
    if course.exists():
        shutil.rmtree(course)
    nbcourse.make_course(course, {name: sources[name] for name in used})
    if keep_db is not None:
        (course / "gradebook.db").write_bytes(keep_db)
    releases = {}
    if used:  # in this process (nbgrader's CLI would cost seconds of start-up per lesson)
        api = nbgrader_api(course)
    for name in used:
        made = api.generate_assignment(name, force=True)
        if not made.get("success"):
            raise SystemExit(f"grade.py: releasing {name} failed:\n{made.get('log')}\n{made.get('error')}")
        releases[name] = nbformat.read(course / nbcourse.RELEASE / name / f"{name}.ipynb", as_version=4)
    template = course_template(course)

    rows = [Row(p.lesson, p.student, p.origin, "could not grade", p.problem) for p in problems]
    tasks = []
    for entry in entries:
        row = Row(entry.lesson, entry.student, entry.origin)
        try:
            nb, row.notes = normalise(entry.read(), releases[entry.lesson])
        except (ValueError, OSError) as error:
            row.status, row.reason = "could not grade", str(error)
            rows.append(row)
            save_to_gradebook(course, entry.lesson, entry.student, None, False)  # Formgrader lists it
            continue
        dest = course / "submitted" / entry.student / entry.lesson / f"{entry.lesson}.ipynb"
        dest.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, dest)
        tasks.append((row, make_task(template, sources[entry.lesson], entry.lesson, entry.student,
                                     nbformat.writes(nb), args.limits, args.figures)))

    # The instructor's own solution is graded beside the class, exactly like a submission: if it
    # loses points in the sandbox (say a data file the sandbox cannot read), every student of that
    # lesson would be misgraded, so none of them is scored.
    checks = [(Row(name, SELF_CHECK), make_task(template, sources[name], name, SELF_CHECK,
                                                (sources[name] / f"{name}.ipynb").read_text(), args.limits,
                                                args.figures))
              for name in sorted({row.lesson for row, _ in tasks})]
    started = time.monotonic()
    results = []
    if tasks:
        client, cluster = make_client(args)
        try:
            # by reference (the module `grade` on the workers' PYTHONPATH), not pickled by value
            worker_fn = __import__("grade").grade_submission
            futures = client.map(worker_fn, [t for _, t in checks + tasks], pure=False)
            for (row, _), future in zip(checks + tasks, futures):
                try:
                    results.append((row, future.result()))
                except Exception as error:  # noqa: BLE001  (a worker died: this submission only)
                    results.append((row, {"ok": False, "error": f"the worker failed: {error}",
                                          "traceback": traceback.format_exc(), "flags": []}))
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    batch_seconds = time.monotonic() - started
    broken = {row.lesson: solution_problem(result) for row, result in results[:len(checks)]}
    broken = {lesson: why for lesson, why in broken.items() if why}
    for lesson, why in broken.items():
        print(f"grade.py: {lesson}'s own solution {why} in the sandbox; its submissions are not scored",
              file=sys.stderr)

    for row, result in results[len(checks):]:
        if row.lesson in broken:
            row.status, row.reason = "could not grade", (
                f"the lesson's own solution {broken[row.lesson]} in the sandbox, so no submission of this "
                "lesson was scored (fix the course setup, then grade again)")
            save_to_gradebook(course, row.lesson, row.student, None, False)
            rows.append(row)
            continue
        row.seconds = result.get("seconds")
        nb = None
        if result.get("ok"):
            nb = nbformat.reads(result["notebook"], as_version=4)
            dest = course / "autograded" / row.student / row.lesson / f"{row.lesson}.ipynb"
            dest.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, dest)
            row.cells = test_cell_points(nb)
            row.written = written_status(nb)
            flags = result.get("flags", [])
            row.status, row.reason = ("flagged", "; ".join(flags)) if flags else ("graded", "")
        else:
            row.status, row.reason = "could not grade", result.get("error", "") or "unknown error"
            row.traceback = result.get("traceback", "")
        save_to_gradebook(course, row.lesson, row.student, nb, row.status == "flagged")
        rows.append(row)

    started = time.monotonic()
    for lesson in sorted({row.lesson for row in rows if row.status != "could not grade"}):
        missing = write_feedback(course, lesson)
        for row in rows:
            if row.lesson == lesson and row.status != "could not grade" and row.student in missing:
                row.notes.append(f"feedback could not be generated: {missing[row.student]}")
    feedback_seconds = time.monotonic() - started
    rows.sort(key=lambda r: (r.lesson, r.student, r.origin))
    return rows, course, {"batch_seconds": batch_seconds, "feedback_seconds": feedback_seconds,
                          "sources": sources, "workers": args.workers}


def write_csv(rows: list[Row], path: Path, sources: dict) -> None:
    import nbformat

    plan = {name: exercises(nbformat.read(folder / f"{name}.ipynb", as_version=4)) for name, folder in sources.items()
            if (folder / f"{name}.ipynb").is_file()}
    width = max([len(v) for v in plan.values()] + [1])
    header = ["lesson", "student", "status", "total", "max"]
    for k in range(1, width + 1):
        header += [f"ex{k}", f"ex{k}_points"]
    header += ["written", "reason", "notes", "source", "traceback"]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for row in rows:
            ex = plan.get(row.lesson, [])
            cells = row.cells
            total = sum(p or 0 for p, _ in cells.values())
            maximum = sum(m for _, m in cells.values()) if cells else ""
            status = {"graded": "graded", "flagged": f"flagged for review: {row.reason}",
                      "could not grade": f"could not grade: {row.reason}"}[row.status]
            line = [row.lesson, row.student, status, f"{total:g}" if row.status == "graded" else "",
                    f"{maximum:g}" if maximum != "" else ""]
            for k in range(width):
                if k < len(ex) and cells:
                    name, ids = ex[k]
                    got = sum(cells.get(i, (0, 0))[0] or 0 for i in ids)
                    line += [name, f"{got:g}/{sum(cells.get(i, (0, 0))[1] for i in ids):g}"]
                else:
                    line += [ex[k][0] if k < len(ex) else "", ""]
            line += [row.written, row.reason if row.status != "graded" else "", "; ".join(row.notes),
                     row.origin, row.traceback]
            writer.writerow(line)


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def write_report(rows: list[Row], path: Path, info: dict) -> None:
    """An HTML page for the instructor: distributions, pass rates, most-failed hidden test, lists."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import nbformat

    parts = [f"<html><head><meta charset='utf-8'><title>Grading report</title><style>body{{font-family:sans-serif;"
             f"max-width:1000px;margin:auto}} td,th{{border:1px solid #ccc;padding:3px 6px}} table{{border-collapse:"
             f"collapse}}</style></head><body><h1>Grading report</h1><p>{len(rows)} entries; "
             f"{sum(r.status == 'graded' for r in rows)} graded, {sum(r.status == 'flagged' for r in rows)} flagged "
             f"for review, {sum(r.status == 'could not grade' for r in rows)} could not be graded. "
             f"Batch time {info['batch_seconds']:.1f} s with {info['workers']} worker(s).</p>"]
    for lesson in sorted({r.lesson for r in rows if r.cells}):
        graded = [r for r in rows if r.lesson == lesson and r.cells]
        source = nbformat.read(info["sources"][lesson] / f"{lesson}.ipynb", as_version=4)
        hidden = {c.metadata.nbgrader["grade_id"] for c in source.cells
                  if sandbox.is_test_cell(c) and "BEGIN HIDDEN TESTS" in c.source}
        ids = [c.metadata.nbgrader["grade_id"] for c in source.cells if sandbox.is_test_cell(c)]
        maximum = sum(graded[0].cells[i][1] for i in ids if i in graded[0].cells) or 1
        totals = [100 * sum(p or 0 for p, _ in r.cells.values()) / maximum for r in graded if r.status == "graded"]
        rates = [sum((r.cells.get(i, (0, 1))[0] or 0) >= r.cells.get(i, (0, 1))[1] for r in graded) / len(graded)
                 for i in ids]
        fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.5))
        a.hist(totals, bins=[0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100.01], color="#4878a8")
        a.set_xlabel("autograded score (% of the code points)")
        a.set_ylabel("students (graded, not flagged)")
        a.set_title(f"{lesson}: score distribution")
        b.barh(range(len(ids)), [100 * x for x in rates],
               color=["#c0504d" if i in hidden else "#4878a8" for i in ids])
        b.set_yticks(range(len(ids)), [f"{i} ({'hidden' if i in hidden else 'visible'})" for i in ids], fontsize=8)
        b.invert_yaxis()
        b.set_xlim(0, 100)
        b.set_xlabel("pass rate (% of graded and flagged submissions)")
        b.set_title("pass rate of each test cell")
        worst = min((rate, i) for rate, i in zip(rates, ids) if i in hidden) if hidden & set(ids) else None
        parts.append(f"<h2>{html.escape(lesson)}</h2><img src='data:image/png;base64,{_png(fig)}'>")
        plt.close(fig)
        if worst:
            parts.append(f"<p>Hidden test failed most: <b>{html.escape(worst[1])}</b> "
                         f"(passed by {100 * worst[0]:.0f}% of {len(graded)}).</p>")
    for title, status in [("Flagged for review", "flagged"), ("Could not grade", "could not grade")]:
        listed = [r for r in rows if r.status == status]
        parts.append(f"<h2>{title} ({len(listed)})</h2>")
        if listed:
            parts.append("<table><tr><th>lesson</th><th>student</th><th>source</th><th>reason</th></tr>" + "".join(
                f"<tr><td>{html.escape(r.lesson)}</td><td>{html.escape(r.student)}</td><td>{html.escape(r.origin)}"
                f"</td><td>{html.escape(r.reason)}</td></tr>" for r in listed) + "</table>")
    parts.append("</body></html>")
    path.write_text("\n".join(parts))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("submissions", type=Path, nargs="?")
    parser.add_argument("--feedback-only", action="store_true",
                        help="grade nothing: rewrite OUT/course/feedback from OUT/course's gradebook, e.g. "
                        "after marking written answers in Formgrader")
    parser.add_argument("--out", type=Path, default=nbcourse.ROOT / "build" / "grading")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="local Dask workers (default: cores)")
    parser.add_argument("--scheduler", help="address of a running Dask scheduler (e.g. tcp://host:8786) "
                        "instead of a local cluster; its workers need this repository and bubblewrap")
    parser.add_argument("--extra-lesson-dir", type=Path, action="append", default=[],
                        help="also grade the lesson in this source folder (the tests' toy lesson)")
    parser.add_argument("--extra-lesson", action="append", default=[], help=argparse.SUPPRESS)
    parser.add_argument("--figures", action="store_true",
                        help="draw each submission's matplotlib figures into its graded notebook and feedback "
                        "(off: each shows as <Figure ...>; drawing costs lesson 01 0.64 s per submission)")
    defaults = sandbox.Limits()
    group = parser.add_argument_group("limits per submission (docs/INSTRUCTORS.md)")
    for name, value in vars(defaults).items():
        group.add_argument(f"--{name.replace('_', '-')}", type=int, default=value, dest=f"limit_{name}")
    args = parser.parse_args(argv)
    if (args.submissions is None) != args.feedback_only:
        parser.error("give SUBMISSIONS to grade, or --feedback-only (and no SUBMISSIONS) to rewrite the feedback")
    args.limits = sandbox.Limits(**{k: getattr(args, f"limit_{k}") for k in vars(defaults)})
    return args


def feedback_only(course: Path) -> int:
    """`--feedback-only`: every lesson's feedback again from the gradebook, nothing graded."""
    if not (course / "gradebook.db").is_file():
        print(f"grade.py: no graded course at {course} (run grade.py SUBMISSIONS --out ... first)", file=sys.stderr)
        return 2
    lessons = sorted({p.parent.name for p in (course / "autograded").glob("*/*/*.ipynb")})
    shutil.rmtree(course / "feedback", ignore_errors=True)
    failed = 0
    for lesson in lessons:
        for student, why in write_feedback(course, lesson).items():
            print(f"{lesson} {student}: feedback could not be generated: {why}", file=sys.stderr)
            failed += 1
    pages = len(list((course / "feedback").glob("*/*/*.html")))
    print(f"feedback: {pages} pages in {course / 'feedback'} ({', '.join(lessons) or 'no lessons'})")
    return 1 if failed else 0


def main(argv=None) -> int:
    args = parse_args(argv)
    _quiet()
    # nbgrader runs the `alembic` executable, which lives beside this Python (e.g. in .venv/bin)
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    if args.feedback_only:  # renders notebooks already graded; runs no student code
        return feedback_only(args.out / "course")
    why = sandbox.available()
    if why:
        print(f"grade.py: cannot sandbox student code: {why}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    rows, course, info = grade(args)
    write_csv(rows, args.out / "grades.csv", info["sources"])
    write_report(rows, args.out / "report.html", info)
    print(f"{'lesson':<28} {'student':<20} {'auto':>9}  status")
    for row in rows:
        points = sum(p or 0 for p, _ in row.cells.values())
        maximum = sum(m for _, m in row.cells.values())
        score = f"{points:g} / {maximum:g}" if row.cells else "-"
        text = {"graded": row.written or "graded", "flagged": f"FLAGGED for review: {row.reason}",
                "could not grade": f"COULD NOT GRADE: {row.reason}"}[row.status]
        print(f"{row.lesson:<28} {row.student:<20} {score:>9}  {text[:200]}")
    print(f"\ngrades: {args.out / 'grades.csv'}; report: {args.out / 'report.html'}; "
          f"feedback: {course / 'feedback'}; batch {info['batch_seconds']:.1f} s, "
          f"feedback {info['feedback_seconds']:.1f} s")
    return 0 if all(r.status == "graded" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
