"""Lessons call the package instead of repeating it: no function written in a lesson's ordinary
cells has the body of a package function, or of a function in another ordinary cell.

"The same body" is compared on the syntax tree with the docstring dropped and every variable and
argument renamed by order of first use (``def nll_loss(m, x, y): ...`` and ``def homo_loss(net,
xb, yb): ...`` with one body are the same), strings (messages) blanked, attributes and numbers kept
(``F.mse_loss`` and ``F.l1_loss`` differ). Exercise answers and test cells are exempt: they mirror the package by design
(``grading.forbid`` keeps answers from calling it). A duplicate found here belongs in the package.
"""
from __future__ import annotations

import ast
import copy
import importlib
import pkgutil
import re
from pathlib import Path

import nbformat
import pytest

import bdl_course
from conftest import LESSONS, ROOT

MIN_NODES = 12  # smaller bodies (``return x + 1``) may coincide without being a helper worth sharing

# (lesson, function) pairs tolerated while a lesson moves a repeat into the package; empty since lesson 03
# dropped its cross_entropy closure (same body as lesson 06's cnn_loss) for bdl.likelihoods.Categorical.
KNOWN: set[tuple[str, str]] = set()


class _Canonical(ast.NodeTransformer):
    def __init__(self):
        self.names: dict[str, str] = {}

    def _rename(self, name: str) -> str:
        return self.names.setdefault(name, f"v{len(self.names)}")

    def visit_Name(self, node):
        return ast.copy_location(ast.Name(id=self._rename(node.id), ctx=node.ctx), node)

    def visit_arg(self, node):
        return ast.copy_location(ast.arg(arg=self._rename(node.arg), annotation=None), node)

    def visit_Constant(self, node):  # messages do not make a body different; numbers do
        return ast.copy_location(ast.Constant(value="" if isinstance(node.value, str) else node.value), node)

    def visit_JoinedStr(self, node):
        return ast.copy_location(ast.Constant(value=""), node)


def body_key(fn: ast.FunctionDef) -> tuple[str, int] | None:
    """The canonical form of ``fn``'s body and its size in syntax nodes (None for an empty body)."""
    fn = copy.deepcopy(fn)
    body = fn.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]  # the docstring
    if not body:
        return None
    tree = _Canonical().visit(ast.Module(body=[ast.FunctionDef(name="f", args=fn.args, body=body, decorator_list=[],
                                                                returns=None, type_params=[])], type_ignores=[]))
    return ast.dump(tree, annotate_fields=False), sum(1 for _ in ast.walk(tree))


def _functions(tree: ast.AST):
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def package_bodies() -> dict[str, str]:
    """Canonical body -> name, for every function and method of the package (nested helpers left out)."""
    bodies = {}
    for info in pkgutil.iter_modules(bdl_course.__path__):
        module = importlib.import_module(f"bdl_course.{info.name}")
        tree = ast.parse(Path(module.__file__).read_text())
        tops = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        tops += [m for c in tree.body if isinstance(c, ast.ClassDef) for m in c.body
                 if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))]
        for fn in tops:
            key = body_key(fn)
            if key:
                bodies[key[0]] = f"bdl_course.{info.name}.{fn.name}"
    return bodies


def lesson_functions(lesson: str):
    """(lesson, cell index, name, canonical body, size) for every def in the lesson's ordinary code cells."""
    nb = nbformat.read(ROOT / "solutions" / lesson / f"{lesson}.ipynb", as_version=4)
    found = []
    for index, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or meta.get("solution") or meta.get("grade"):
            continue
        # IPython magics and shell lines become ``pass`` (keeping an ``if`` around them valid Python)
        source = "\n".join(line[:len(line) - len(line.lstrip())] + "pass" if line.lstrip().startswith(("%", "!"))
                           else line for line in cell.source.splitlines())
        for fn in _functions(ast.parse(source)):
            key = body_key(fn)
            if key:
                found.append((lesson, index, fn.name, *key))
    return found


def _def(src: str) -> ast.FunctionDef:
    return ast.parse(src).body[0]


def test_the_canonical_body_ignores_names_and_docstrings_but_not_what_is_called():
    a = _def("def nll_loss(m, x, y):\n    'doc'\n    mu = m(x)\n    return ((mu - y) ** 2).mean()")
    b = _def("def homo_loss(net, xb, yb):\n    out = net(xb)\n    return ((out - yb) ** 2).mean()")
    c = _def("def other(net, xb, yb):\n    out = net(xb)\n    return ((out - yb) ** 3).mean()")
    d = _def("def f(m, x, y):\n    return F.mse_loss(m(x), y)")
    e = _def("def f(m, x, y):\n    return F.l1_loss(m(x), y)")
    assert body_key(a) == body_key(b)
    assert body_key(a) != body_key(c) and body_key(d) != body_key(e)


def test_package_bodies_are_found_by_their_canonical_form():
    from bdl_course import predictive

    src = Path(predictive.__file__).read_text()
    fn = next(n for n in ast.parse(src).body if isinstance(n, ast.FunctionDef) and n.name == "logmeanexp")
    renamed = ast.parse(re.sub(r"\bt\b", "values", ast.unparse(fn).replace("logmeanexp", "my_lme"))).body[0]
    assert package_bodies()[body_key(renamed)[0]] == "bdl_course.predictive.logmeanexp"


def test_no_lesson_repeats_the_body_of_a_package_function():
    bodies = package_bodies()
    repeats = [f"{lesson} cell {index}: {name} repeats {bodies[key]}"
               for name_lesson in LESSONS for lesson, index, name, key, size in lesson_functions(name_lesson)
               if key in bodies]
    assert not repeats, "call the package instead:\n" + "\n".join(repeats)


def test_no_two_lesson_functions_share_a_body():
    seen: dict[str, list] = {}
    for lesson in LESSONS:
        for lesson_, index, name, key, size in lesson_functions(lesson):
            if size >= MIN_NODES:
                seen.setdefault(key, []).append((lesson_, index, name))
    repeats = [places for places in seen.values() if len(places) > 1
               and not all((lesson, name) in KNOWN for lesson, _, name in places)]
    assert not repeats, "these functions have one body; move it into bdl_course:\n" + "\n".join(map(str, repeats))


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_lesson_parses(lesson):
    assert isinstance(lesson_functions(lesson), list)
