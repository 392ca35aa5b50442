"""Run every lesson headless and print a table: lesson, seconds, key results, status.

    python tools/run_lessons.py [LESSON ...] [--source solutions|lessons] [--out build/course]
                                [--timeout SECONDS]      (make course TIMEOUT=SECONDS)

Each notebook is executed with nbclient in its own folder (as a student would run it); the
executed notebook and an HTML copy go to --out, the kernel's own log to --out/NAME.kernel.log.
Key results are the printed output of the cells tagged ``key-results``. A failing lesson is
reported with the cell that failed; exits 1 if any lesson fails.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError
from nbconvert import HTMLExporter
from traitlets.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nbcourse  # noqa: E402

# Progress bars in a headless run are widgets nobody watches; the saved notebook and HTML would
# show them frozen at 0%. The kernels inherit this (tqdm >= 4.66 reads TQDM_* defaults).
os.environ.setdefault("TQDM_DISABLE", "1")

ROOT = Path(__file__).resolve().parent.parent


def key_results(nb) -> list[str]:
    """Printed lines of the cells tagged ``key-results``."""
    lines = []
    for cell in nb.cells:
        if cell.cell_type == "code" and "key-results" in cell.metadata.get("tags", []):
            for out in cell.get("outputs", []):
                if out.get("output_type") == "stream" and out.get("name") == "stdout":
                    lines += [line.strip() for line in out["text"].splitlines() if line.strip()]
    return lines


def describe(nb, index: int) -> str:
    """'cell 12 (id train-loop, "first line of its source")', for error messages."""
    cell = nb.cells[index]
    first = next((line for line in cell.source.splitlines() if line.strip()), "")
    return f"cell {index} (id {cell.get('id', '?')}, {first[:60]!r})"


def run(path: Path, out_dir: Path, timeout: int) -> tuple[float, str, list[str]]:
    nb = nbformat.read(path, as_version=4)
    out_dir.mkdir(parents=True, exist_ok=True)
    current = {"index": 0}

    def on_cell_start(cell, cell_index):
        current["index"] = cell_index

    # The kernel talks over Unix sockets (no "running over TCP without encryption" warning at
    # every start); their short path in a scratch folder stays under the 107-byte socket limit.
    sockets = Path(tempfile.mkdtemp(prefix="bdl-kernel-"))
    config = Config()
    config.KernelManager.transport = "ipc"
    config.KernelManager.ip = str(sockets / "k")
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", config=config, on_cell_start=on_cell_start,
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    status = "ok"
    log = out_dir / f"{path.stem}.kernel.log"
    try:
        # the kernel's own log (e.g. its shutdown after a timeout) is for a person debugging, not the table
        with open(log, "w") as kernel_log:
            client.execute(stderr=kernel_log)
    except CellTimeoutError:
        status = (f"FAILED: {describe(nb, current['index'])} ran longer than {timeout} s. On a slow or busy "
                  f"machine allow more: make course TIMEOUT={4 * timeout} (tools/run_lessons.py --timeout)")
    except CellExecutionError as err:
        status = f"FAILED: {describe(nb, current['index'])} raised {err.ename}: {err.evalue}"[:300]
    finally:
        shutil.rmtree(sockets, ignore_errors=True)
    seconds = time.perf_counter() - start
    nbformat.write(nb, out_dir / path.name)
    html, _ = HTMLExporter().from_notebook_node(nb)
    (out_dir / path.with_suffix(".html").name).write_text(html, encoding="utf-8")
    return seconds, status, key_results(nb)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lessons", nargs="*", help="lesson names (default: all)")
    parser.add_argument("--source", default="solutions", choices=["solutions", "lessons"])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "course")
    parser.add_argument("--timeout", type=int, default=300, help="seconds allowed per cell")
    args = parser.parse_args()
    folder = ROOT / args.source
    names = args.lessons or nbcourse.lessons(folder)
    rows, failed = [], 0
    for name in names:
        path = folder / name / f"{name}.ipynb"
        if not path.is_file():
            print(f"{name}: no notebook at {path}", file=sys.stderr)
            failed += 1
            continue
        print(f"running {name} ...", flush=True)
        seconds, status, results = run(path, args.out, args.timeout)
        failed += status != "ok"
        rows.append((name, seconds, results or ["-"], status))

    width = max([len(r[0]) for r in rows] + [6])
    rule = "-" * (width + 100)
    print(f"\n{'lesson':<{width}}  {'seconds':>7}  {'status':<8}  key results\n{rule}")
    for name, seconds, results, status in rows:
        print(f"{name:<{width}}  {seconds:7.1f}  {status if status == 'ok' else 'FAILED':<8}  {results[0]}")
        for line in results[1:]:
            print(f"{'':<{width}}  {'':>7}  {'':<8}  {line}")
        if status != "ok":
            print(f"{'':<{width}}  {'':>7}  {'':<8}  {status}")
    print(rule)
    print(f"total {sum(r[1] for r in rows):.1f} s; executed notebooks and HTML in {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
