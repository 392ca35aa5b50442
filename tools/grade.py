"""Autograde a folder of submissions in a scratch nbgrader course, with feedback and scores.

    python tools/grade.py SUBMISSIONS [--out build/grading]

SUBMISSIONS is laid out as `nbgrader collect` leaves it: SUBMISSIONS/<student>/<lesson>/<lesson>.ipynb.
Every lesson found there is released from solutions/ into the scratch course (so nbgrader
knows its tests, hidden ones included), autograded and given HTML feedback without hidden
tests. Scores are read through nbgrader's Gradebook API into OUT/grades.csv and printed.
Exits 1 if any submission could not be graded; the rest of the batch is graded regardless.
"""
from __future__ import annotations

import argparse
import csv
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nbcourse  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("submissions", type=Path)
    parser.add_argument("--out", type=Path, default=nbcourse.ROOT / "build" / "grading")
    args = parser.parse_args()
    if not args.submissions.is_dir():
        parser.error(f"SUBMISSIONS must be a folder of <student>/<lesson>/<lesson>.ipynb, got {args.submissions}")
    lessons = sorted({p.parent.name for p in args.submissions.glob("*/*/*.ipynb")})
    unknown = [name for name in lessons if not (nbcourse.ROOT / nbcourse.SOURCE / name).is_dir()]
    if unknown or not lessons:
        parser.error(f"no gradable submissions in {args.submissions}" if not lessons
                     else f"submissions for lessons that solutions/ does not have: {unknown}")

    if args.out.exists():
        shutil.rmtree(args.out)
    course = nbcourse.make_course(args.out, {n: nbcourse.ROOT / nbcourse.SOURCE / n for n in lessons})
    shutil.copytree(args.submissions, course / "submitted", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    failed = False
    for name in lessons:
        nbcourse.release(course, name)
        print(f"autograding {name} ...", flush=True)
        result = nbcourse.autograde(course, name)
        if result.returncode != 0:
            failed = True
            errors = [line for line in (result.stdout + result.stderr).splitlines() if "ERROR" in line]
            print("\n".join(errors[-10:]) or result.stderr[-2000:], file=sys.stderr)
        nbcourse.feedback(course, name)

    scores = nbcourse.scores(course)
    with open(course / "grades.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["lesson", "student", "auto_score", "auto_max", "written_pending", "graded"])
        for s in scores:
            writer.writerow([s.lesson, s.student, s.auto if s.graded else "", s.auto_max, s.needs_manual, s.graded])
    print(f"\n{'lesson':<28} {'student':<20} {'auto':>10}  written")
    for s in scores:
        if s.graded:
            print(f"{s.lesson:<28} {s.student:<20} {s.auto:>4g} / {s.auto_max:<3g}  {'to mark' if s.needs_manual else '-'}")
        else:
            print(f"{s.lesson:<28} {s.student:<20} NOT GRADED: the submission could not be run (see the errors above)")
    print(f"\ngrades: {course / 'grades.csv'}; feedback: {course / 'feedback'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
