"""Project-level promises: one list of dependencies, one repository URL, lessons that open
in Colab and install the package there."""
from __future__ import annotations

import re
import tomllib

import nbformat
import yaml

from conftest import LESSONS, ROOT

CONDA_TO_PYPI = {"pytorch": "torch"}  # the only name that differs between the two registries


def requirement(line: str) -> tuple[str, str]:
    name, spec = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", line.strip()).groups()
    return CONDA_TO_PYPI.get(name.lower(), name.lower()), spec.replace(" ", "")


def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    project = pyproject()["project"]
    declared = project["dependencies"] + [d for extra in project["optional-dependencies"].values() for d in extra]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str) and not d.startswith(("python", "pip"))]
    assert dict(map(requirement, conda)) == dict(map(requirement, declared))


def repository() -> str:
    """owner/name from pyproject.toml's Repository URL: the one place that holds it."""
    url = pyproject()["project"]["urls"]["Repository"]
    return re.fullmatch(r"https://github\.com/([^/]+/[^/]+)", url).group(1)


def test_every_github_link_in_lessons_and_readme_points_at_the_repository():
    texts = {p: p.read_text() for p in [ROOT / "README.md", *ROOT.glob("solutions/*/*.ipynb"), *ROOT.glob("lessons/*/*.ipynb")]}
    for path, text in texts.items():
        for owner_repo in re.findall(r"(?:colab\.research\.google\.com/github|github\.com)/([\w.-]+/[\w.-]+)", text):
            assert owner_repo == repository(), f"{path.relative_to(ROOT)} links to {owner_repo}"


def test_every_lesson_has_a_colab_badge_and_installs_the_package_first_on_colab():
    for folder in ("solutions", "lessons"):
        for name in LESSONS:
            nb = nbformat.read(ROOT / folder / name / f"{name}.ipynb", as_version=4)
            badge = f"colab.research.google.com/github/{repository()}/blob/main/lessons/{name}/{name}.ipynb"
            assert badge in nb.cells[0].source, f"{folder}/{name}: Open-in-Colab badge missing"
            first_code = next(c for c in nb.cells if c.cell_type == "code")
            assert 'if "google.colab" in sys.modules:' in first_code.source
            assert f"git+https://github.com/{repository()}" in first_code.source
            assert "import bdl_course as bdl" in first_code.source


def test_lessons_never_redeclare_a_helper_of_the_package():
    import bdl_course

    helpers = {name for module in vars(bdl_course).values() if hasattr(module, "__file__")
               for name in dir(module) if not name.startswith("_")}
    for name in LESSONS:
        nb = nbformat.read(ROOT / "solutions" / name / f"{name}.ipynb", as_version=4)
        defined = {m for c in nb.cells if c.cell_type == "code" for m in re.findall(r"^def (\w+)", c.source, re.M)}
        assert defined & helpers == set(), f"{name} redefines {defined & helpers}"
