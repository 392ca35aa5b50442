"""Regenerate lessons/ (the student versions) from solutions/ with nbgrader.

    python tools/release.py [LESSON ...] [--out FOLDER]

Runs `nbgrader generate_assignment --force` in a scratch course, tags the student version's
answer and test cells `raises-exception` (so Run All goes on past unsolved exercises) and
copies the release to FOLDER (default: lessons/), replacing each lesson's folder there.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nbcourse  # noqa: E402


def release_lessons(lessons: list[str], out: Path) -> None:
    known = nbcourse.lessons()
    missing = [name for name in lessons if name not in known]
    if missing:
        raise SystemExit(f"no such lesson in solutions/: {', '.join(missing)}")
    with tempfile.TemporaryDirectory(prefix="bdl-release-") as tmp:
        course = nbcourse.make_course(Path(tmp), {n: nbcourse.ROOT / nbcourse.SOURCE / n for n in lessons})
        for name in lessons:
            released = nbcourse.release(course, name)
            dest = out / name
            if dest.exists():
                shutil.rmtree(dest)
            shutil.copytree(released, dest)
            print(f"released {name} -> {dest}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lessons", nargs="*", help="lesson names (default: every lesson in solutions/)")
    parser.add_argument("--out", type=Path, default=nbcourse.ROOT / nbcourse.RELEASE)
    args = parser.parse_args()
    lessons = args.lessons or nbcourse.lessons()
    release_lessons(lessons, args.out)


if __name__ == "__main__":
    main()
