"""Point the course at its GitHub repository and the ref Colab installs from, everywhere at once.

    python tools/set_repository_url.py https://github.com/OWNER/NAME [--ref REF]

pyproject.toml holds both: `[project.urls] Repository` and `[tool.bdl-course] colab-ref` (a
release tag such as v0.1.0, or a commit; default: v<version>, the tag README's "Publishing the
course" cuts). This rewrites them there, in the README's links, and in every solution
notebook's Open-in-Colab badge (.../blob/REF/lessons/...) and install line (...@REF), so the
badge opens exactly the code the install cell installs. Run `make release` afterwards to
regenerate lessons/, then commit.
"""
from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PART = r"[\w.-]+"  # an owner, a repository name
REF = r"[\w./-]+"  # a tag, branch or commit (no quote, backslash or space)


def settings(root: Path) -> tuple[str, str]:
    """(owner/name, ref) as pyproject.toml states them."""
    project = tomllib.loads((root / "pyproject.toml").read_text())
    url = project["project"]["urls"]["Repository"]
    return url.removeprefix("https://github.com/"), project["tool"]["bdl-course"]["colab-ref"]


def version(root: Path) -> str:
    init = (root / "bdl_course" / "__init__.py").read_text()
    return re.search(r'^__version__ = "([^"]+)"', init, re.M).group(1)


def rewrite(text: str, old_repo: str, repo: str, ref: str) -> str:
    """The badge, install line and links of ``text`` pointed at ``repo`` (owner/name) and ``ref``."""
    text = re.sub(rf"colab\.research\.google\.com/github/{PART}/{PART}/blob/{REF}?/lessons/",
                  f"colab.research.google.com/github/{repo}/blob/{ref}/lessons/", text)
    text = re.sub(rf"git\+https://github\.com/{PART}/{PART}(@{REF})?", f"git+https://github.com/{repo}@{ref}", text)
    # other links to the old repository (README), not the install line just written
    return re.sub(rf"(?<!\+)https://github\.com/{re.escape(old_repo)}(?![\w.@-])", f"https://github.com/{repo}", text)


def set_repository(root: Path, url: str, ref: str) -> list[Path]:
    repo = url.removeprefix("https://github.com/")
    old_repo, _ = settings(root)
    changed = []
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text()
    new = re.sub(r'^Repository = "[^"]*"', f'Repository = "{url}"', text, flags=re.M)
    new = re.sub(r'^colab-ref = "[^"]*"', f'colab-ref = "{ref}"', new, flags=re.M)
    for path, before, after in [(pyproject, text, new)] + [
            (p, p.read_text(), None) for p in [root / "README.md", *sorted(root.glob("solutions/*/*.ipynb"))]]:
        after = rewrite(before, old_repo, repo, ref) if after is None else after
        if after != before:
            path.write_text(after)
            changed.append(path)
    assert settings(root) == (repo, ref), "pyproject.toml must hold Repository and [tool.bdl-course] colab-ref"
    return changed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", help="https://github.com/OWNER/NAME")
    parser.add_argument("--ref", help="tag or commit Colab installs and opens (default: v<version>)")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)  # for the tests
    args = parser.parse_args()
    if not re.fullmatch(rf"https://github\.com/{PART}/{PART}", args.url):
        parser.error(f"not a GitHub repository URL: {args.url}")
    ref = args.ref or f"v{version(args.root)}"
    if not re.fullmatch(REF, ref):
        parser.error(f"not a tag or commit: {ref}")
    for path in set_repository(args.root, args.url, ref):
        print(f"updated {path.relative_to(args.root)}")
    print(f"Colab installs and opens {args.url} at {ref}; now run `make release` and commit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
