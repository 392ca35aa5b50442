"""tools/grade.py on a class of toy submissions: honest, wrong, broken and hostile (issue 11 §2).

One batch of ~45 submissions of the toy lesson (1 visible + 2 hidden points; seconds each) is
graded once with `tools/grade.py` (sandboxed, 2 Dask workers); the tests read its CSV, feedback
and the file system. Every hostile submission must score 0 on what it did not solve or be
flagged for review; every honest one keeps its marks; nothing outside the grader's output
folder changes; no hidden test reaches a student's feedback.
"""
from __future__ import annotations

import csv
import hashlib
import html
import json
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

from conftest import FIXTURES, ROOT, TOY, nbgrader_meta, with_answers

sys.path.insert(0, str(ROOT / "tools"))
import nbcourse  # noqa: E402
import sandbox  # noqa: E402

SOLUTION = FIXTURES / TOY / f"{TOY}.ipynb"
SECRET = "grader-env-secret-5f1c"           # in the grader's environment: must never reach a page
MARKER = Path("/tmp/bdl-grade-attack-marker")  # hostile code tries to create it from the sandbox
RIGHT = "def square(x):\n    return x * x"
WRONG = "def square(x):\n    return abs(x) * 3  # right for 3 only"

# ---- what each submission's answer cell holds, and what it must get ------------------------
# expected: an int (status graded, that total), "flagged", "zero_or_flagged" (hostile that did
# not solve it), or ("could not grade", text in the reason)
HONEST = {
    "h_right": (RIGHT, 3),
    "h_power": ("def square(x):\n    return x ** 2", 3),
    "h_float": ("def square(x):\n    y = float(x)\n    return y * y", 3),
    "h_math": ("import math\n\ndef square(x):\n    return math.pow(x, 2)", 3),
    "h_noisy": ("import logging, sys, warnings\n\ndef square(x):\n    warnings.warn('squaring')\n"
                "    logging.warning('x=%s', x)\n    print('debug', x, file=sys.stderr)\n    print('hi')\n"
                "    return x * x", 3),
    "h_helper": ("def _times(a, b):\n    \"\"\"a helper\"\"\"\n    return a * b\n\n\ndef square(x: float) -> float:\n"
                 "    return _times(x, x)", 3),
    "h_chatty": ("for i in range(3000):\n    print('line', i)\n\ndef square(x):\n    return x * x", 3),
    "h_huge_print": ("print('x' * 40_000_000)\n\ndef square(x):\n    return x * x", 3),
    "h_wrong": (WRONG, 1),
    "h_wrong_sum": ("def square(x):\n    return x + x", 0),
    "h_wrong_sign": ("def square(x):\n    return x * abs(x)", 1),
    "h_import_error": ("import a_module_that_does_not_exist\n\ndef square(x):\n    return x * x", 0),
    "h_syntax_error": ("def square(x)\n    return x * x", 0),
    "h_infinite_loop": ("def square(x):\n    while True:\n        pass", 0),
    "h_memory_hog": ("big = bytearray(16 * 2**30)\n\ndef square(x):\n    return x * x", 0),
}
HOSTILE = {
    "x_patch_isclose": ("import math\nmath.isclose = lambda *a, **k: True\n" + WRONG, "flagged"),
    "x_patch_when_called": ("def square(x):\n    import math\n    math.isclose = lambda *a, **k: True\n"
                            "    return abs(x) * 3", "flagged"),  # a patch made inside the test, and kept
    "x_setattr_builtin": ("import builtins\nsetattr(builtins, 'abs', lambda v: v)\n" + WRONG, "flagged"),
    "x_always_equal": ("class Anything(float):\n    def __eq__(self, other):\n        return True\n"
                       "    __hash__ = float.__hash__\n\ndef square(x):\n    return Anything(0)", "flagged"),
    "x_forbid_noop": ("import contextlib\nimport bdl_course.grading as g\ng.forbid = lambda *a, **k: "
                      "contextlib.nullcontext()\n" + WRONG, "flagged"),
    "x_ast_transformer": ("import ast\nclass Strip(ast.NodeTransformer):\n    def visit_Assert(self, node):\n"
                          "        return ast.Pass()\nget_ipython().ast_transformers.append(Strip())\n" + WRONG,
                          "flagged"),
    "x_input_transformer": ("def wrap(lines):\n    return ['try:\\n'] + ['    ' + l for l in lines] + "
                            "['\\nexcept BaseException:\\n    pass\\n']\n"
                            "get_ipython().input_transformers_post.append(wrap)\n" + WRONG, "flagged"),
    "x_hidden_transformer": ("ip = getattr(__builtins__, 'get_' + 'ipython', None) or globals()['get_' + 'ipython']\n"
                             "ip().input_transformers_post.append(lambda lines: ['pass\\n'])\n" + WRONG, "flagged"),
    "x_displayhook": ("import sys\ndef square(x):\n    sys.displayhook('3')\n    return 0", "zero_or_flagged"),
    "x_module_beside": ("open('fractions.py', 'w').write('def Fraction(*a): return 0')\nimport sys\n"
                        "sys.path.insert(0, '.')\nimport fractions\n" + WRONG, "flagged"),
    "x_exec_solution": ("import glob, os, bdl_course\nfound = glob.glob(os.path.dirname(bdl_course.__file__) + "
                        "'/../**/00_grading_fixture*.ipynb', recursive=True) + glob.glob('../**/solutions/**/*.ipynb', "
                        "recursive=True)\nimport json\nfor p in found:\n    for c in json.load(open(p))['cells']:\n"
                        "        if 'def square' in ''.join(c['source']):\n            exec(''.join(c['source']))\n"
                        "if not found:\n    def square(x):\n        return None", "zero_or_flagged"),
    "x_read_gradebook": ("import glob\nhits = glob.glob('/work/**/gradebook.db', recursive=True) + glob.glob('/tmp/**/gradebook.db', recursive=True) + glob.glob('../**/gradebook.db', recursive=True)\nprint(hits)\n"
                         "def square(x):\n    return None", "zero_or_flagged"),
    "x_sqlite_write": ("import glob, sqlite3\nfor p in glob.glob('/work/**/gradebook.db', recursive=True) + "
                       "['../gradebook.db', '../../gradebook.db']:\n    try:\n        db = sqlite3.connect(p)\n"
                       "        db.execute('update grade set auto_score = 99')\n        db.commit()\n"
                       "    except Exception as e:\n        print(e)\n" + WRONG, "flagged"),
    "x_pth_into_venv": ("import site, sys\nfor d in site.getsitepackages() + [sys.prefix]:\n    try:\n"
                        f"        open(d + '/evil.pth', 'w').write(\"import os; open(%r, 'w')\" % {str(MARKER)!r})\n"
                        "    except OSError as e:\n        print(e)\n" + WRONG, "flagged"),
    "x_edit_config": ("import glob\nfor p in glob.glob('/work/**/nbgrader_config.py', recursive=True) + "
                      "['../nbgrader_config.py']:\n    try:\n        open(p, 'a').write('\\nc.GenerateFeedback."
                      "preprocessors = []\\n')\n    except OSError as e:\n        print(e)\n" + WRONG, "flagged"),
    "x_daemon": ("import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(4)\n"
                 f"        open({str(MARKER)!r}, 'w').write('daemon')\n        os._exit(0)\n    os._exit(0)\n" + RIGHT,
                 "flagged"),
    "x_fork_holds_stdout": ("import os, sys, time\nif os.fork() == 0:\n    time.sleep(300)\n    os._exit(0)\n" + RIGHT,
                            "flagged"),
    "x_fork_many": ("import os, time\nn = 0\nfor i in range(300):\n    try:\n        pid = os.fork()\n"
                    "    except OSError:\n        break\n    if pid == 0:\n        time.sleep(20)\n        os._exit(0)\n"
                    "    n += 1\nprint('forked', n)\n" + RIGHT, "flagged"),
    "x_environment": ("import os\nprint(dict(os.environ))\ntry:\n    print(open(os.path.expanduser('~/.ssh/id_rsa')).read())\n"
                      "except OSError as e:\n    print(e)\n" + WRONG, "flagged"),
    "x_grader_aware": ("import os\nif os.environ.get('NBGRADER_EXECUTION'):\n    def square(x):\n        return x * x\n"
                       "else:\n    " + WRONG.replace("\n", "\n    "), "zero_or_flagged"),
    "x_kill_kernel": ("import os\nos._exit(0)\n" + RIGHT, "zero_or_flagged"),
}


_RELEASE: list[Path] = []


def release_notebook(tmp: Path) -> Path:
    """The toy lesson's student version (released once per test session)."""
    if not _RELEASE:
        course = nbcourse.make_course(tmp / "release-course", {TOY: FIXTURES / TOY})
        _RELEASE.append(nbcourse.release(course, TOY) / f"{TOY}.ipynb")
    return _RELEASE[0]


def build_batch(folder: Path, release: Path) -> dict[str, object]:
    """SUBMISSIONS/<student>/<lesson>/<lesson>.ipynb for every kind; returns student -> expected."""
    expected: dict[str, object] = {}

    def put(student: str, content: str | bytes, name: str = f"{TOY}.ipynb", lesson: str = TOY) -> Path:
        dest = folder / student / lesson / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(content.encode() if isinstance(content, str) else content)
        return dest

    for student, (answer, want) in {**HONEST, **HOSTILE}.items():
        put(student, nbformat.writes(with_answers(release, {"square_answer": answer})))
        expected[student] = want
    put("h_solution", SOLUTION.read_bytes())
    expected["h_solution"] = 3
    put("h_blank", release.read_bytes())
    expected["h_blank"] = 0
    right = with_answers(release, {"square_answer": RIGHT})
    put("h_bom", b"\xef\xbb\xbf" + nbformat.writes(right).encode())
    expected["h_bom"] = 3
    stripped = json.loads(nbformat.writes(right))
    for cell in stripped["cells"]:
        cell["metadata"] = {}
    put("h_stripped_metadata", json.dumps(stripped))
    expected["h_stripped_metadata"] = 3
    extra = with_answers(release, {"square_answer": RIGHT})
    extra.cells.insert(4, nbformat.v4.new_code_cell("print(square(4))", id="my-own-cell"))
    bonus = nbformat.v4.new_code_cell("x = 1", id="bonus")
    bonus.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "points": 100,
                                  "grade_id": "bonus", "schema_version": 3}
    extra.cells.append(bonus)
    put("h_extra_cells", nbformat.writes(extra))
    expected["h_extra_cells"] = 3
    tampered = with_answers(release, {"square_answer": WRONG})
    for cell in tampered.cells:
        if nbgrader_meta(cell).get("grade") and cell.cell_type == "code":
            cell.source = "assert True"
    put("h_tampered_asserts", nbformat.writes(tampered))
    expected["h_tampered_asserts"] = 1
    many = with_answers(release, {"square_answer": WRONG})
    many.cells += [nbformat.v4.new_code_cell("pass", id=f"extra-{i}") for i in range(2000)]
    put("x_many_cells", nbformat.writes(many))
    expected["x_many_cells"] = ("could not grade", "cells (limit")
    # broken entries, each reported by name while everyone else is graded
    put("b_invalid_json", '{"cells": [ this is not JSON')
    expected["b_invalid_json"] = ("could not grade", "invalid JSON")
    put("b_empty", b"")
    expected["b_empty"] = ("could not grade", "invalid JSON")
    put("b_not_a_notebook", "[1, 2, 3]")
    expected["b_not_a_notebook"] = ("could not grade", "not a notebook")
    put("b_misnamed_folder", nbformat.writes(right), lesson=f"{TOY}_final")
    expected["b_misnamed_folder"] = ("could not grade", "unknown lesson folder")
    put("b_misnamed_notebook", nbformat.writes(right), name="my_work.ipynb")
    expected["b_misnamed_notebook"] = ("could not grade", "misnamed")
    link = folder / "b_dangling_link" / TOY / f"{TOY}.ipynb"
    link.parent.mkdir(parents=True)
    link.symlink_to("/nonexistent/notebook.ipynb")
    expected["b_dangling_link"] = ("could not grade", "symbolic link")
    link = folder / "x_link_to_solution" / TOY / f"{TOY}.ipynb"
    link.parent.mkdir(parents=True)
    link.symlink_to(SOLUTION)
    expected["x_link_to_solution"] = ("could not grade", "symbolic link")
    # a blank notebook with modules beside it that would shadow the ones the lesson imports
    put("x_torch_py_beside", release.read_bytes())
    put("x_torch_py_beside", "raise SystemExit('shadowed')", name="math.py")
    put("x_torch_py_beside", "raise SystemExit('shadowed')", name="torch.py")
    expected["x_torch_py_beside"] = 0
    return expected


def tree_digest(*roots: Path) -> dict[str, str]:
    out = {}
    for root in roots:
        for path in sorted(root.rglob("*")) if root.is_dir() else [root]:
            if "__pycache__" in path.parts or ".ipynb_checkpoints" in path.parts:
                continue
            if path.is_symlink():
                out[str(path)] = "link:" + os.readlink(path)
            elif path.is_file():
                out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def guarded_paths() -> list[Path]:
    """What no submission may change (files nobody else edits while the tests run): the toy
    lesson, the nbgrader config, the venv's .pth files; plus world-writable decoys (see below)."""
    site = sorted(Path(sys.prefix).glob("lib/python*/site-packages"))
    return [FIXTURES / TOY, ROOT / "nbgrader_config.py", *[p for s in site[:1] for p in s.glob("*.pth")], DECOYS]


# Decoys anyone may write, where hostile code looks (/tmp, the grader's folders): if a sandbox
# could reach the host's files, the sqlite/config/solution attacks would change these.
DECOYS = Path("/tmp/bdl-grade-decoys")


def plant_decoys(release: Path) -> None:
    import sqlite3
    DECOYS.mkdir(exist_ok=True)
    for sub in ["", "course", "course/solutions/00_grading_fixture"]:
        (DECOYS / sub).mkdir(parents=True, exist_ok=True)
        (DECOYS / sub).chmod(0o777)
    db = sqlite3.connect(DECOYS / "course" / "gradebook.db")
    db.execute("create table if not exists grade (auto_score real)")
    db.commit()
    db.close()
    (DECOYS / "course" / "nbgrader_config.py").write_text("c = get_config()\n")
    (DECOYS / "course" / "solutions" / TOY / f"{TOY}.ipynb").write_bytes(SOLUTION.read_bytes())
    for path in DECOYS.rglob("*"):
        if path.is_file():
            path.chmod(0o666)


def created_by_a_sandbox(since: float) -> list[str]:
    """Files under the repository written after ``since`` by a sandbox's uid (there must be none)."""
    out = []
    for path in ROOT.rglob("*"):
        try:
            st = path.lstat()
        except OSError:
            continue
        if st.st_mtime >= since and 61000 <= st.st_uid < 65000 and ".git" not in path.parts:
            out.append(str(path))
    return out


class Batch:
    def __init__(self, tmp: Path):
        self.input = tmp / "submissions"
        self.out = tmp / "out"
        release = release_notebook(tmp)
        self.expected = build_batch(self.input, release)
        plant_decoys(release)
        MARKER.unlink(missing_ok=True)
        self.site_pth = sorted(p.name for p in Path(sys.prefix).glob("lib/python*/site-packages/*.pth"))
        before_input, before_repo = tree_digest(self.input), tree_digest(*guarded_paths())
        start, wall = time.monotonic(), time.time()
        env = dict(os.environ, GRADE_TEST_SECRET=SECRET)
        self.run = subprocess.run(
            [sys.executable, str(ROOT / "tools" / "grade.py"), str(self.input), "--out", str(self.out),
             "--extra-lesson-dir", str(FIXTURES / TOY), "--workers", "2", "--cell-timeout", "3",
             "--wall-timeout", "60"], capture_output=True, text=True, env=env, timeout=600)
        self.seconds = time.monotonic() - start
        time.sleep(0.5)  # a daemon that outlived its sandbox would write the marker after 4 s
        self.input_unchanged = tree_digest(self.input) == before_input
        self.repo_changes = sorted(k for k, v in tree_digest(*guarded_paths()).items() if before_repo.get(k) != v) + \
            sorted(set(before_repo) - set(tree_digest(*guarded_paths()))) + created_by_a_sandbox(wall - 1)
        with open(self.out / "grades.csv") as f:
            self.rows = {(r["student"], r["lesson"]): r for r in csv.DictReader(f)}


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> Batch:
    why = sandbox.available()
    if why:
        pytest.fail(f"the grading sandbox is unavailable: {why}", pytrace=False)
    return Batch(tmp_path_factory.mktemp("grade-security"))


def row(batch, student):
    lesson = f"{TOY}_final" if student == "b_misnamed_folder" else TOY
    assert (student, lesson) in batch.rows, f"{student} is missing from grades.csv:\n{batch.run.stdout[-3000:]}"
    return batch.rows[student, lesson]


def test_the_batch_completes_and_reports_everyone(batch):
    assert batch.run.returncode == 1, batch.run.stderr[-3000:]  # some entries are flagged/ungraded
    students = {s for s, _ in batch.rows}
    assert students == set(batch.expected), (students ^ set(batch.expected), batch.run.stdout[-2000:])
    assert batch.seconds < 400
    print(f"batch of {len(batch.expected)} graded in {batch.seconds:.1f} s")


@pytest.mark.parametrize("student", sorted([*HONEST, "h_solution", "h_blank", "h_bom", "h_stripped_metadata",
                                            "h_extra_cells", "h_tampered_asserts", "x_torch_py_beside"]))
def test_honest_and_wrong_work_gets_exactly_its_marks(batch, student):
    r = row(batch, student)
    assert r["status"] == "graded", (r["status"], r["traceback"][-1500:])
    assert float(r["total"]) == batch.expected[student]
    assert r["max"] == "3"


@pytest.mark.parametrize("student", sorted(HOSTILE))
def test_hostile_work_scores_nothing_it_did_not_solve_or_is_flagged(batch, student):
    r = row(batch, student)
    want = batch.expected[student]
    if want == "flagged":
        assert r["status"].startswith("flagged for review: "), (r["status"], r["ex1_points"])
    else:
        assert r["status"].startswith("flagged for review: ") or (r["status"] == "graded" and float(r["total"]) == 0) \
            or r["status"].startswith("could not grade: "), r


@pytest.mark.parametrize("student", sorted(s for s, v in [
    ("b_invalid_json", 1), ("b_empty", 1), ("b_not_a_notebook", 1), ("b_misnamed_folder", 1),
    ("b_misnamed_notebook", 1), ("b_dangling_link", 1), ("x_link_to_solution", 1), ("x_many_cells", 1)]))
def test_broken_entries_are_reported_by_name_with_the_reason(batch, student):
    r = row(batch, student)
    _, text = batch.expected[student]
    assert r["status"].startswith("could not grade: ") and text in r["status"], r["status"]


def test_flags_say_what_was_seen(batch):
    status = {s: batch.rows[s, TOY]["status"] for s in HOSTILE if (s, TOY) in batch.rows}
    assert "canary" in status["x_ast_transformer"] and "ast_transformers" in status["x_ast_transformer"]
    assert "canary" in status["x_input_transformer"]
    assert "canary" in status["x_hidden_transformer"]
    assert "math.isclose" in status["x_patch_isclose"]
    assert "rebinds math.isclose (seen by the end of test cell" in status["x_patch_when_called"]
    assert "forbid" in status["x_forbid_noop"]
    assert "__eq__" in status["x_always_equal"]
    assert "sys.path" in status["x_module_beside"] or "own folder" in status["x_module_beside"]


def test_the_partial_credit_trick_earns_nothing(batch):
    r = row(batch, "x_displayhook")
    assert r["ex1_points"] == "0/3"


def test_nothing_outside_the_output_folder_changed(batch):
    assert batch.input_unchanged, "grade.py modified its input"
    assert batch.repo_changes == []
    assert sorted(p.name for p in Path(sys.prefix).glob("lib/python*/site-packages/*.pth")) == batch.site_pth
    assert not MARKER.exists(), "code of a submission ran outside its sandbox (or outlived it)"
    # no process of a sandbox is left: not the forked children, not the detached daemon
    leftovers = [p.name for p in Path("/proc").iterdir() if p.name.isdigit() and _sandboxed(p)]
    assert leftovers == []


def _status(pid: str) -> dict:
    try:
        text = (Path("/proc") / pid / "status").read_text()
    except OSError:
        return {}
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def _sandboxed(proc: Path) -> bool:
    """A process of a sandbox's uid that no live bwrap holds (a sandbox of another grader
    running at the same time, e.g. a benchmark, is not a leftover)."""
    status = _status(proc.name)
    if not status or not 61000 <= int(status.get("Uid", "0").split()[0]) < 65000:
        return False
    pid = status.get("PPid", "0").strip()
    while pid not in ("0", "1", ""):
        parent = _status(pid)
        if parent.get("Name", "").strip() == "bwrap":
            return False
        pid = parent.get("PPid", "0").strip()
    return True


def test_gradebook_holds_the_trusted_scores(batch):
    scores = {s.student: s for s in nbcourse.scores(batch.out / "course")}
    assert scores["h_right"].auto == 3 and scores["h_wrong"].auto == 1
    assert scores["x_sqlite_write"].auto <= 1  # its sqlite writes never reached this gradebook


def test_feedback_has_no_hidden_tests_secrets_or_huge_pages(batch):
    pages = list((batch.out / "course" / "feedback").rglob("*.html"))
    assert len(pages) >= 30
    for page in pages:
        assert page.stat().st_size < 8 * 2**20, page
        text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))
        assert "square(-2.5)" not in text and "HIDDEN TESTS" not in text, page
        assert SECRET not in text, page
        assert "GRADER-PROBE" not in text and "_grader_setup" not in text, page


def test_the_instructor_report_lists_flagged_and_ungraded_work(batch):
    report = (batch.out / "report.html").read_text()
    assert "data:image/png;base64," in report
    assert "Hidden test failed most: <b>square_hidden</b>" in report
    for student in ["x_ast_transformer", "b_invalid_json", "b_dangling_link"]:
        assert student in report


# ---- layouts, zip and idempotence (a small second batch) ----------------------------------

def test_a_zip_of_flat_folders_is_graded_and_reruns_are_idempotent(tmp_path):
    if sandbox.available():
        pytest.fail(sandbox.available(), pytrace=False)
    release = release_notebook(tmp_path)
    flat = tmp_path / TOY
    flat.mkdir()
    (flat / "ana.ipynb").write_text(nbformat.writes(with_answers(release, {"square_answer": RIGHT})))
    (flat / "ben.ipynb").write_text(nbformat.writes(with_answers(release, {"square_answer": WRONG})))
    (flat / "notes.txt").write_text("ignored")
    archive = tmp_path / "term.zip"
    with zipfile.ZipFile(archive, "w") as z:  # a zip of the flat layout, inside a `submitted/` folder
        for p in flat.iterdir():
            z.write(p, f"submitted/{TOY}/{p.name}")

    def grade(source, out):
        result = subprocess.run([sys.executable, str(ROOT / "tools" / "grade.py"), str(source), "--out", str(out),
                                 "--extra-lesson-dir", str(FIXTURES / TOY), "--workers", "1"],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        return (out / "grades.csv").read_text()

    first = grade(archive, tmp_path / "out")
    rows = {r["student"]: r for r in csv.DictReader(first.splitlines())}
    assert (rows["ana"]["total"], rows["ben"]["total"]) == ("3", "1")
    assert rows["ana"]["source"] == f"{TOY}/ana.ipynb"
    page = tmp_path / "out" / "course" / "feedback" / "ana" / TOY / f"{TOY}.html"
    assert "Score: 3.0 / 4.0" in html.unescape(page.read_text())

    # the instructor marks ana's written answer in Formgrader (which writes the gradebook), then
    # asks for the feedback again: it shows the mark and the comment
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{tmp_path / 'out' / 'course' / 'gradebook.db'}") as gb:
        gb.find_grade("written_answer", TOY, TOY, "ana").manual_score = 1
        gb.find_comment("written_answer", TOY, TOY, "ana").manual_comment = "Right: x times x."
        gb.db.commit()
    again = subprocess.run([sys.executable, str(ROOT / "tools" / "grade.py"), "--feedback-only",
                            "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "feedback: 2 pages" in again.stdout, again.stdout + again.stderr
    text = html.unescape(page.read_text())
    assert "Score: 4.0 / 4.0" in text and "Right: x times x." in text

    # a rerun over the same output: the same CSV (automatic points), and the mark is kept
    assert grade(archive, tmp_path / "out") == first
    text = html.unescape(page.read_text())
    assert "Score: 4.0 / 4.0" in text and "Right: x times x." in text


# ---- fast checks of the trusted steps (no notebook runs) ---------------------------------

def test_collect_reads_every_layout_and_reports_bad_entries_by_name(tmp_path):
    import grade
    lessons = {TOY, "01_other"}
    nbg = tmp_path / "term"
    for student in ["ana", "ben"]:
        (nbg / student / TOY).mkdir(parents=True)
        (nbg / student / TOY / f"{TOY}.ipynb").write_text("{}")
    (nbg / "ana" / TOY / "torch.py").write_text("")          # beside it: never read
    (nbg / "cy" / f"{TOY}_final").mkdir(parents=True)
    (nbg / "cy" / f"{TOY}_final" / f"{TOY}.ipynb").write_text("{}")
    (nbg / "bad id!" / TOY).mkdir(parents=True)
    (nbg / "bad id!" / TOY / f"{TOY}.ipynb").write_text("{}")
    entries, problems = grade.collect(nbg, lessons)
    assert [(e.student, e.lesson) for e in entries] == [("ana", TOY), ("ben", TOY)]
    assert {(p.student, p.problem.split(" ")[0]) for p in problems} == {("cy", "unknown"), ("bad id!", "not")}

    flat = tmp_path / "flat"
    (flat / TOY).mkdir(parents=True)
    (flat / TOY / "dee.ipynb").write_text("{}")
    (flat / "01_other").mkdir()
    (flat / "01_other" / "eve.ipynb").write_text("{}")
    entries, problems = grade.collect(flat, lessons)
    assert [(e.student, e.lesson) for e in entries] == [("dee", TOY), ("eve", "01_other")] and not problems
    entries, _ = grade.collect(flat / TOY, lessons)  # the folder of one lesson itself
    assert [(e.student, e.lesson) for e in entries] == [("dee", TOY)]

    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(f"ana/{TOY}/{TOY}.ipynb", "{}")
        z.writestr(f"../escape/{TOY}/{TOY}.ipynb", "{}")
        link = zipfile.ZipInfo(f"ben/{TOY}/{TOY}.ipynb")
        link.external_attr = (0o120777 << 16)
        z.writestr(link, "/work/main/solutions/x.ipynb")
    entries, problems = grade.collect(archive, lessons)
    assert [(e.student, e.lesson) for e in entries] == [("ana", TOY)]
    assert any(p.student == "ben" and "symbolic link" in p.problem for p in problems)


def test_normalise_repairs_bom_and_stripped_metadata_and_refuses_non_notebooks(tmp_path):
    import grade
    release = nbformat.read(release_notebook(tmp_path), as_version=4)
    text = nbformat.writes(release)
    nb, notes = grade.normalise(b"\xef\xbb\xbf" + text.encode(), release)
    assert any("byte-order mark" in n for n in notes)
    raw = json.loads(text)
    for cell in raw["cells"]:
        cell["metadata"] = {}
    nb, notes = grade.normalise(json.dumps(raw).encode(), release)
    assert [nbgrader_meta(c).get("grade_id") for c in nb.cells] == [nbgrader_meta(c).get("grade_id") for c in release.cells]
    for bad, why in [(b"", "invalid JSON"), (b"[1]", "not a notebook"), (b"\xff\xfe", "not UTF-8")]:
        with pytest.raises(ValueError, match=why):
            grade.normalise(bad, release)


def test_the_static_checks_pass_every_lessons_own_solution():
    """No false alarm on honest code: the solutions' answer cells raise no flag."""
    for folder in sorted((ROOT / "solutions").iterdir()):
        path = folder / f"{folder.name}.ipynb"
        if path.is_file():
            nb = nbformat.read(path, as_version=4)
            answers = [c for c in nb.cells if c.cell_type == "code" and nbgrader_meta(c).get("solution")]
            assert sandbox.static_flags(answers) == [], folder.name


# ---- the instructor's own solution is graded beside the class --------------------------------

def _grade_folder(source: Path, out: Path, *extra: str) -> dict:
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "grade.py"), str(source), "--out", str(out),
                             "--workers", "1", *extra], capture_output=True, text=True, timeout=300)
    assert result.returncode in (0, 1), result.stdout[-2000:] + result.stderr[-2000:]
    return {r["student"]: r for r in csv.DictReader((out / "grades.csv").read_text().splitlines())}


def test_a_lesson_whose_own_solution_loses_points_in_the_sandbox_scores_nobody(tmp_path):
    # e.g. a data file the sandbox cannot read: every student would be misgraded, so none is scored
    if sandbox.available():
        pytest.fail(sandbox.available(), pytrace=False)
    release = release_notebook(tmp_path)
    lesson = tmp_path / "lessons" / TOY
    lesson.mkdir(parents=True)
    solution = nbformat.read(FIXTURES / TOY / f"{TOY}.ipynb", as_version=4)
    for cell in solution.cells:
        if nbgrader_meta(cell).get("grade_id") == "square_answer":
            cell.source = WRONG
    nbformat.write(solution, lesson / f"{TOY}.ipynb")
    flat = tmp_path / "in" / TOY
    flat.mkdir(parents=True)
    (flat / "ana.ipynb").write_text(nbformat.writes(with_answers(release, {"square_answer": RIGHT})))
    rows = _grade_folder(tmp_path / "in", tmp_path / "out", "--extra-lesson-dir", str(lesson))
    assert rows["ana"]["status"].startswith("could not grade: the lesson's own solution scores 1/3"), rows["ana"]
    assert rows["ana"]["total"] in ("", "0"), rows["ana"]


def test_a_lesson_that_reads_pinned_files_from_data_is_graded_right_in_the_sandbox(tmp_path):
    # lesson 07 reads its HMC draws from the checkout's data/: the sandbox must see them (a toy lesson
    # whose test reads them too costs seconds, where lesson 07 itself would cost two more runs)
    if sandbox.available():
        pytest.fail(sandbox.available(), pytrace=False)
    lesson = tmp_path / "lessons" / TOY
    lesson.mkdir(parents=True)
    solution = nbformat.read(FIXTURES / TOY / f"{TOY}.ipynb", as_version=4)
    for cell in solution.cells:
        if nbgrader_meta(cell).get("grade_id") == "square_tests":
            cell.source = ("import bdl_course.hmc\nassert bdl_course.hmc.load_gold().f_grid.shape[0] == 4\n"
                           + cell.source)
    nbformat.write(solution, lesson / f"{TOY}.ipynb")
    flat = tmp_path / "in" / TOY
    flat.mkdir(parents=True)
    (flat / "ana.ipynb").write_text(nbformat.writes(solution))
    rows = _grade_folder(tmp_path / "in", tmp_path / "out", "--extra-lesson-dir", str(lesson))
    assert rows["ana"]["status"] == "graded" and rows["ana"]["total"] == rows["ana"]["max"] == "3", rows["ana"]


def one_cell_notebook(code: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def test_the_sandbox_runs_a_lesson_as_a_students_machine_would(tmp_path):
    # scikit-learn's n_jobs=-1 (lesson 05's forests) needs a writable /dev/shm for joblib's
    # semaphores: without one joblib warned and ran serial, and grading cost 2.5 s more than the lesson
    if sandbox.available():
        pytest.fail(sandbox.available(), pytrace=False)
    code = ("import os, tempfile, joblib\n"
            "from joblib._multiprocessing_helpers import mp\n"
            "print('workers', joblib.cpu_count(), os.cpu_count(), mp is not None)\n"
            "for folder in ('/tmp', '/dev/shm'):\n"
            "    with tempfile.NamedTemporaryFile(dir=folder) as f:\n"
            "        f.write(b'x')\n"
            "print('writable')")
    nb = one_cell_notebook(code)
    outputs = sandbox.run_sandboxed(nb, sandbox.Limits(), tmp_path / "scratch").executed.cells[0].outputs
    text = "".join(o.get("text", "") + o.get("evalue", "") for o in outputs)
    assert f"workers {os.cpu_count()} {os.cpu_count()} True\nwritable\n" == text, text


def test_a_running_dask_cluster_grades_the_class_with_the_scheduler_option(tmp_path):
    # a cluster started as docs/INSTRUCTORS.md says (a scheduler, and workers with tools/ on their
    # PYTHONPATH); grade.py then starts no cluster of its own, so the work was done by this one
    if sandbox.available():
        pytest.fail(sandbox.available(), pytrace=False)
    flat = tmp_path / "in" / TOY
    flat.mkdir(parents=True)
    release = release_notebook(tmp_path)
    (flat / "ana.ipynb").write_text(nbformat.writes(with_answers(release, {"square_answer": RIGHT})))
    (flat / "ben.ipynb").write_text(nbformat.writes(with_answers(release, {"square_answer": WRONG})))
    dask = str(Path(sys.executable).parent / "dask")
    info = tmp_path / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tools")}
    logs = [open(tmp_path / f"{name}.log", "w") for name in ("scheduler", "worker")]
    scheduler = subprocess.Popen([dask, "scheduler", "--scheduler-file", str(info), "--host", "127.0.0.1",
                                  "--no-dashboard"], stdout=logs[0], stderr=logs[0], env=env)
    worker = None
    try:
        for _ in range(300):
            if info.is_file() and info.stat().st_size:
                break
            time.sleep(0.1)
        address = json.loads(info.read_text())["address"]
        worker = subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--nworkers", "1",
                                   "--no-dashboard", "--memory-limit", "0"], stdout=logs[1], stderr=logs[1], env=env)
        result = subprocess.run([sys.executable, str(ROOT / "tools" / "grade.py"), str(tmp_path / "in"),
                                 "--out", str(tmp_path / "out"), "--extra-lesson-dir", str(FIXTURES / TOY),
                                 "--scheduler", address], capture_output=True, text=True, timeout=300)
        from distributed import Client
        with Client(address, timeout=30) as client:  # the tasks this cluster's scheduler saw finish
            ran = client.run_on_scheduler(lambda dask_scheduler: {
                name: prefix.state_counts["memory"] for name, prefix in dask_scheduler.task_prefixes.items()})
    finally:
        for proc in (worker, scheduler):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)
        for log in logs:
            log.close()
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    rows = {r["student"]: r for r in csv.DictReader((tmp_path / "out" / "grades.csv").read_text().splitlines())}
    assert (rows["ana"]["total"], rows["ben"]["total"]) == ("3", "1")
    assert ran.get("grade_submission") == 3, ran  # the two students and the lesson's own solution
    assert (tmp_path / "out" / "course" / "feedback" / "ana" / TOY / f"{TOY}.html").is_file()


def test_figures_are_drawn_into_the_graded_notebook_only_when_asked(tmp_path):
    # off by default (the lessons' plots are the lessons' own; drawing them is most of what grading
    # a short lesson adds); either way a figure is shown and closed, as the inline backend does
    if sandbox.available():
        pytest.fail(sandbox.available(), pytrace=False)
    code = ("import matplotlib.pyplot as plt\nfor i in range(25):\n    plt.plot([0, i])\n    plt.show()\n"
            "print('open figures:', len(plt.get_fignums()))")
    nb = one_cell_notebook(code)
    for figures, kinds in [(False, {"text/plain"}), (True, {"image/png", "text/plain"})]:
        outputs = sandbox.run_sandboxed(nb, sandbox.Limits(), tmp_path / str(figures), figures=figures) \
            .executed.cells[0].outputs
        shown = [o for o in outputs if o.output_type == "display_data"]
        assert len(shown) == 25 and all(set(o.data) == kinds for o in shown), (figures, outputs[:2])
        assert "open figures: 0\n" in [o.get("text") for o in outputs if o.output_type == "stream"]
