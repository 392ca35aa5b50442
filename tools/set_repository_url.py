"""Point the course at another GitHub repository (a fork, or the real home of the course).

    python tools/set_repository_url.py https://github.com/OWNER/NAME

pyproject.toml's `[project.urls] Repository` is the one place the URL is defined; this
rewrites it there and in the lessons' Colab badge and install line, and in the README.
Run `make release` afterwards to regenerate lessons/.
"""
from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    if len(sys.argv) != 2 or not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", sys.argv[1]):
        print(__doc__, file=sys.stderr)
        return 2
    old = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
    old_repo, new_repo = old.removeprefix("https://github.com/"), sys.argv[1].removeprefix("https://github.com/")
    for path in [ROOT / "pyproject.toml", ROOT / "README.md", *ROOT.glob("solutions/*/*.ipynb")]:
        text = path.read_text()
        if old_repo in text:
            path.write_text(text.replace(f"github.com/{old_repo}", f"github.com/{new_repo}")
                            .replace(f"github/{old_repo}", f"github/{new_repo}"))
            print(f"updated {path.relative_to(ROOT)}")
    print("now run `make release` and commit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
