"""Project-level promises: one list of dependencies, one repository URL, lessons that open
in Colab and install the package there."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib

import nbformat
import pytest
import yaml

from conftest import ALL_LESSONS, FIXTURES, LESSONS, ROOT

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


def colab_ref() -> str:
    """The tag or commit Colab installs and opens: pyproject.toml's [tool.bdl-course] colab-ref."""
    return pyproject()["tool"]["bdl-course"]["colab-ref"]


def test_every_lesson_has_a_colab_badge_and_installs_the_package_first_on_colab():
    """Badge and install line name the same pinned ref; the install is the bare package (no
    extras: Colab's own Jupyter stack is never replaced)."""
    install = f'%pip install --quiet "bdl-course @ git+https://github.com/{repository()}@{colab_ref()}"'
    for folder in ("solutions", "lessons"):
        for name in LESSONS:
            nb = nbformat.read(ROOT / folder / name / f"{name}.ipynb", as_version=4)
            badge = f"colab.research.google.com/github/{repository()}/blob/{colab_ref()}/lessons/{name}/{name}.ipynb"
            assert badge in nb.cells[0].source, f"{folder}/{name}: Open-in-Colab badge for {colab_ref()} missing " \
                "(python tools/set_repository_url.py URL --ref REF, then make release)"
            first_code = next(c for c in nb.cells if c.cell_type == "code")
            assert 'if "google.colab" in sys.modules:' in first_code.source
            assert install in first_code.source, f"{folder}/{name}: install line must be {install}"
            assert "import bdl_course as bdl" in first_code.source


def test_the_colab_install_leaves_colabs_jupyter_stack_alone():
    """Colab ships ipywidgets 7.7 and its own Jupyter server and kernel: the runtime
    requirements accept that ipywidgets and pull in no Jupyter application."""
    from packaging.requirements import Requirement

    runtime = {Requirement(r).name.lower(): Requirement(r).specifier for r in pyproject()["project"]["dependencies"]}
    assert runtime["ipywidgets"].contains("7.7.1")
    jupyter = {"jupyterlab", "notebook", "jupyter", "jupyter-server", "ipykernel", "nbgrader", "nbclient", "nbconvert"}
    assert not jupyter & set(runtime)


def test_set_repository_url_sets_url_and_ref_together(tmp_path):
    """The tool rewrites pyproject, the badge and the install line of every lesson at once."""
    for name in ("pyproject.toml", "README.md"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    (tmp_path / "bdl_course").mkdir()
    (tmp_path / "bdl_course" / "__init__.py").write_text((ROOT / "bdl_course" / "__init__.py").read_text())
    for name in LESSONS:
        (tmp_path / "solutions" / name).mkdir(parents=True)
        (tmp_path / "solutions" / name / f"{name}.ipynb").write_text(
            (ROOT / "solutions" / name / f"{name}.ipynb").read_text())
    tool = [sys.executable, str(ROOT / "tools" / "set_repository_url.py"), "--root", str(tmp_path)]
    subprocess.run([*tool, "https://github.com/someone/fork", "--ref", "v9.9"], check=True, capture_output=True)
    text = (tmp_path / "pyproject.toml").read_text()
    assert 'Repository = "https://github.com/someone/fork"' in text and 'colab-ref = "v9.9"' in text
    for name in LESSONS:
        source = (tmp_path / "solutions" / name / f"{name}.ipynb").read_text()
        assert f"colab.research.google.com/github/someone/fork/blob/v9.9/lessons/{name}/{name}.ipynb" in source
        assert 'git+https://github.com/someone/fork@v9.9\\"' in source
        assert repository() not in source
    bad = subprocess.run([*tool, "https://gitlab.com/x/y"], capture_output=True, text=True)
    assert bad.returncode == 2 and "not a GitHub repository URL" in bad.stderr


def test_every_lesson_has_its_wrong_answer_fixture():
    """Checked here in a second, not after the pipeline's minutes of autograding."""
    missing = [n for n in ALL_LESSONS if not (FIXTURES / "wrong_answers" / f"{n}.py").is_file()]
    assert missing == [], f"add tests/fixtures/wrong_answers/<lesson>.py (see CONTRIBUTING.md): {missing}"


@pytest.mark.parametrize("env, threads", [({}, 1), ({"BDL_COURSE_THREADS": "2"}, 2), ({"OMP_NUM_THREADS": "2"}, 2)])
def test_the_course_runs_torch_on_one_thread_unless_told_otherwise(env, threads):
    """Small networks beside a busy process: one intra-op thread (see bdl_course/__init__.py)."""
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "BDL_COURSE_THREADS")}
    result = subprocess.run([sys.executable, "-c", "import bdl_course, torch; print(torch.get_num_threads())"],
                            capture_output=True, text=True, env={**clean, **env}, check=True)
    assert int(result.stdout) == threads


@pytest.mark.parametrize("lesson", ALL_LESSONS)
def test_every_lesson_ends_with_a_locked_claims_cell_of_asserts(lesson):
    """The claims cell runs with the solution (the pipeline's solution run fails on any error), so a
    change that makes a claim in the prose untrue fails CI."""
    nb = nbformat.read(ROOT / "solutions" / lesson / f"{lesson}.ipynb", as_version=4)
    last = [c for c in nb.cells if c.cell_type == "code"][-1]
    meta = last.metadata.get("nbgrader", {})
    assert last.source.startswith("# Claims made in this lesson"), "the last code cell is the claims cell"
    assert meta.get("locked") and not meta.get("grade") and not meta.get("solution"), meta
    asserts = re.findall(r"^\s*assert\b.*?,\s*\S", last.source, re.M)
    assert len(asserts) >= 3, "one assert per claim, each with a message naming the cell that makes it"
