"""Lesson 05 uses exactly the settings that tools/tune_uci.py selected, as committed in tools/tune_uci.csv."""
from __future__ import annotations

import ast
import csv
import math
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "tools" / "tune_uci.csv"
LESSON = ROOT / "solutions" / "05_deep_ensembles" / "05_deep_ensembles.ipynb"


def lesson_settings() -> dict:
    """The SETTINGS dict literal of the lesson's `settings` cell."""
    cell = next(c for c in nbformat.read(LESSON, as_version=4).cells if c.get("id") == "settings")
    for node in ast.parse(cell.source).body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["SETTINGS"]:
            return {key.value: {kw.arg: ast.literal_eval(kw.value) for kw in value.keywords}
                    for key, value in zip(node.value.keys, node.value.values)}
    raise AssertionError("the settings cell defines no SETTINGS = {...}")


def table() -> list[dict]:
    with open(TABLE, newline="") as f:
        return list(csv.DictReader(f))


def test_table_selects_one_setting_per_method_by_its_stated_rule():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import tune_uci
    finally:
        sys.path.remove(str(ROOT / "tools"))
    rows = table()
    for method in ("ensemble", "single", "mc_dropout"):
        part = [r for r in rows if r["method"] == method]
        assert sum(r["selected"] == "1" for r in part) == 1, f"{method}: exactly one selected row"
        typed = [dict(r, lr=float(r["lr"]), batch=int(r["batch"]), wd=float(r["wd"]), floor=float(r["floor"]),
                      p=float(r["p"]), length=float(r["length"]) if r["length"] else "",
                      val_nll=float(r["val_nll"]), failed=int(r["failed"])) for r in part]
        chosen = tune_uci.select(typed)  # the rule applied again to the committed numbers
        assert chosen["selected"] == "1", f"{method}: the committed choice is not what the rule picks"
        assert chosen["failed"] == 0


@pytest.mark.parametrize("method", ["ensemble", "single", "mc_dropout"])
def test_lesson_uses_the_tables_choice(method):
    chosen = next(r for r in table() if r["method"] == method and r["selected"] == "1")
    ours = lesson_settings()[method]
    assert math.isclose(ours["lr"], float(chosen["lr"])), (method, "lr")
    assert ours["batch_size"] == int(chosen["batch"]), (method, "batch")
    assert math.isclose(ours["min_std"], float(chosen["floor"])), (method, "floor")
    if method == "mc_dropout":
        assert math.isclose(ours["dropout"], float(chosen["p"])), (method, "p")
        assert math.isclose(ours["length_scale"], float(chosen["length"])), (method, "length")
    else:
        assert math.isclose(ours["weight_decay"], float(chosen["wd"]), abs_tol=1e-12), (method, "wd")
