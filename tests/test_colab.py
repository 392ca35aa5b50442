"""A Colab stand-in: a lesson runs in an environment holding what Colab ships (torch, its
Jupyter kernel, ipywidgets 7.7, the scientific stack) and nothing of the course, installed by
the lesson's own first cell from the pinned ref of a git repository (here a local snapshot of
this checkout, git+file://...@REF), with a stand-in `google.colab` module imported first as on
Colab. The install must leave Colab's Jupyter stack alone.

The Colab environment is built once and cached under build/colab-sim/ (keyed on what it
holds); each run works on a hard-linked copy, so the install starts from a clean Colab.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT, nbcourse
from test_project import colab_ref, repository

LESSON = "01_posterior_predictive"  # the quickest lesson; the install path is the same for all
TORCH = os.environ.get("TORCH_VERSION", "2.13.0")
# What Colab ships, as far as the course cares; ipywidgets 7.7.1 has been Colab's for years.
COLAB = [f"torch=={TORCH}", "ipykernel", "ipywidgets==7.7.1", "numpy", "matplotlib", "scikit-learn", "tqdm"]
JUPYTER_STACK = ["ipykernel", "ipython", "ipywidgets", "jupyter-client", "jupyter-core", "notebook",
                 "tornado", "traitlets", "widgetsnbextension", "jupyterlab-widgets", "pyzmq"]
UNREACHABLE = ("No matching distribution", "Could not find a version", "NewConnectionError",
               "Temporary failure in name resolution", "Network is unreachable", "ProxyError")


def pip(python: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=True, text=True)


def colab_base() -> Path:
    """The cached Colab environment (a venv), built on first use."""
    key = hashlib.sha256(json.dumps([COLAB, sys.version_info[:2]]).encode()).hexdigest()[:12]
    base = ROOT / "build" / "colab-sim" / key
    if (base / "ready").is_file():
        return base / "venv"
    shutil.rmtree(base, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(base / "venv")], check=True)
    python = base / "venv" / "bin" / "python"
    wheels = ["--find-links", "/opt/wheels"] if Path("/opt/wheels").is_dir() else []
    # a current pip, as Colab has (pip 23 rejects `name @ git+file://...`)
    for step in (["install", "-q", "-U", "pip"], ["install", "-q", *wheels, *COLAB]):
        result = pip(python, *step)
        if result.returncode != 0:
            shutil.rmtree(base, ignore_errors=True)
            if any(s in result.stderr for s in UNREACHABLE):
                pytest.skip(f"pip could not reach the package registry to build the Colab stand-in:"
                            f" {result.stderr.strip().splitlines()[-1]}")
            raise RuntimeError(f"building the Colab stand-in failed:\n{result.stderr[-3000:]}")
    (base / "ready").write_text("\n".join(COLAB) + "\n")
    return base / "venv"


def versions(python: Path) -> dict[str, str]:
    listed = json.loads(pip(python, "list", "--format=json").stdout)
    return {p["name"].lower().replace("_", "-"): p["version"] for p in listed}


def snapshot(dest: Path, ref: str) -> Path:
    """A git repository holding this checkout's package as it is now, tagged ``ref``."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, dest / name)
    shutil.copytree(ROOT / "bdl_course", dest / "bdl_course", ignore=shutil.ignore_patterns("__pycache__"))
    git = ["git", "-C", str(dest), "-c", "user.name=ci", "-c", "user.email=ci@localhost"]
    for args in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "snapshot"], ["tag", ref]):
        subprocess.run([*git, *args], check=True, capture_output=True)
    return dest


def stand_in_kernel(tmp: Path, python: Path) -> Path:
    """A kernelspec starting Colab's kernel: google.colab imported before any cell runs."""
    stub = tmp / "stub" / "google" / "colab"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("from . import output\n")
    (stub / "output.py").write_text(textwrap.dedent('''\
        """Stand-in for google.colab.output: records that the custom widget manager was enabled."""
        import os


        def enable_custom_widget_manager():
            open(os.environ["COLAB_SIM_WIDGETS"], "a").write("enabled\\n")
        '''))
    launcher = tmp / "stub" / "colab_kernel.py"
    launcher.write_text("import google.colab  # noqa: F401  (Colab imports it before any cell)\n"
                        "from ipykernel.kernelapp import launch_new_instance\nlaunch_new_instance()\n")
    spec = tmp / "jupyter" / "kernels" / "colab-sim"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(python), str(launcher), "-f", "{connection_file}"], "display_name": "Colab stand-in",
        "language": "python", "env": {"PYTHONPATH": str(tmp / "stub"), "COLAB_SIM_WIDGETS": str(tmp / "widgets")}}))
    return tmp / "jupyter"


def test_a_lesson_installs_and_runs_on_colab(tmp_path, monkeypatch):
    from nbclient import NotebookClient

    python = tmp_path / "colab" / "bin" / "python"
    subprocess.run(["cp", "-al", str(colab_base()), str(tmp_path / "colab")], check=True)
    before = versions(python)
    assert "bdl-course" not in before and before["ipywidgets"] == "7.7.1"

    # the student version, as released, its install line pointed at a local snapshot at the pinned ref
    ref = colab_ref()
    repo = snapshot(tmp_path / "repo", ref)
    course = nbcourse.make_course(tmp_path / "course", {LESSON: ROOT / "solutions" / LESSON})
    nb = nbformat.read(nbcourse.release(course, LESSON) / f"{LESSON}.ipynb", as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    line = f"git+https://github.com/{repository()}@{ref}"
    assert line in first.source, "install line not pinned: python tools/set_repository_url.py URL --ref REF, make release"
    first.source = first.source.replace(line, f"git+file://{repo}@{ref}")

    monkeypatch.setenv("JUPYTER_PATH", str(stand_in_kernel(tmp_path, python)))
    work = tmp_path / "content"  # Colab's working folder: nothing of the course in it
    work.mkdir()
    NotebookClient(nb, timeout=600, kernel_name="colab-sim", resources={"metadata": {"path": str(work)}}).execute()

    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = {c.id for c in code if any(o.get("output_type") == "error" for o in c.outputs)}
    assert all(c.execution_count for c in code), "Run all must reach the last cell"
    assert errors <= {c.id for c in code if nbcourse.is_exercise_cell(c)}, errors
    assert (tmp_path / "widgets").read_text() == "enabled\n", "Colab's custom widget manager was not enabled"

    after = versions(python)
    assert "bdl-course" in after
    changed = {name: (before.get(name), after.get(name)) for name in JUPYTER_STACK if before.get(name) != after.get(name)}
    assert changed == {}, f"the Colab install changed Colab's Jupyter stack: {changed}"
    assert {"torch": before["torch"]} == {"torch": after["torch"]}
    installed = subprocess.run([str(python), "-c", "import bdl_course; print(bdl_course.__file__)"],
                               capture_output=True, text=True, cwd=work, env={"PATH": os.environ["PATH"]})
    assert str(tmp_path / "colab") in installed.stdout, installed.stdout + installed.stderr
