"""Helpers for the exercises' test cells: ``assert_close`` and ``forbid``.

The course's rule for numbers (stated in the README's student guide): an answer may use any
floating dtype; test cells compare values in float64 with the tolerance they state.
"""
from __future__ import annotations

import gc
import sys
import types
from contextlib import contextmanager

import torch

# The comparison uses references taken when this module is imported (before any answer cell
# runs), so an answer that rebinds torch.allclose or torch.isclose does not change it.
_as_tensor, _float64, _abs, _isfinite, _isnan, _isinf = (
    torch.as_tensor, torch.float64, torch.abs, torch.isfinite, torch.isnan, torch.isinf)
_plain = torch.Tensor.as_subclass
_DisableTorchFunction = getattr(torch._C, "DisableTorchFunctionSubclass", None) or torch._C.DisableTorchFunction


class ForbiddenCall(AssertionError):
    """Raised when an exercise answer calls the course's own implementation."""


def _to_float64(value, name: str, role: str) -> torch.Tensor:
    """A plain CPU float64 tensor holding ``value`` (a tensor of any real dtype, a number, an
    array or nested list). Tensor subclasses are unwrapped first, so their overrides are not used."""
    if isinstance(value, torch.Tensor):
        with _DisableTorchFunction():
            t = _plain(value, torch.Tensor).detach()
            if t.is_complex():
                raise AssertionError(f"{name}: {role} is complex ({t.dtype}); a real value is expected")
            return t.to(device="cpu", dtype=_float64, copy=True)
    if value is None or isinstance(value, (str, bytes, dict)) or isinstance(value, complex):
        raise AssertionError(f"{name}: {role} should be a number or a tensor, got {type(value).__name__}")
    try:
        t = _as_tensor(value, dtype=_float64) if not hasattr(value, "dtype") else _as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as error:
        raise AssertionError(f"{name}: {role} should be a number or a tensor, got "
                             f"{type(value).__name__} ({error})") from None
    if t.is_complex():
        raise AssertionError(f"{name}: {role} is complex; a real value is expected")
    return _plain(t, torch.Tensor).detach().to(device="cpu", dtype=_float64, copy=True)


def assert_close(actual, expected, *, rtol: float = 1e-5, atol: float = 1e-8,
                 name: str = "the result", equal_nan: bool = False) -> None:
    """Fail with a message naming ``name`` unless ``actual`` matches ``expected``.

    Both may be tensors of any floating (or integer) dtype, Python numbers, numpy arrays or
    nested lists; they are compared in float64 elementwise: ``|a - e| <= atol + rtol * |e|``.
    Shapes must be equal (a Python number is a 0-d tensor). Infinities must match exactly,
    NaN fails unless ``equal_nan``.
    """
    a = _to_float64(actual, name, "your answer")
    e = _to_float64(expected, name, "the expected value")
    if tuple(a.shape) != tuple(e.shape):
        raise AssertionError(f"{name}: shape {tuple(a.shape)}, expected shape {tuple(e.shape)}")
    if a.numel() == 0:
        return
    with _DisableTorchFunction():
        both_inf = _isinf(a) & _isinf(e)
        finite = _isfinite(a) & _isfinite(e)
        err = torch.where(finite, _abs(a - e), torch.zeros_like(a))
        ok = (finite & (err <= atol + rtol * _abs(e))) | (both_inf & (a == e))
        if equal_nan:
            ok = ok | (_isnan(a) & _isnan(e))
        if bool(ok.all()):
            return
        failing = (~ok).nonzero()
        first = tuple(int(i) for i in failing[0]) if a.dim() else ()
        got, want = float(a[first]) if a.dim() else float(a), float(e[first]) if e.dim() else float(e)
        worst = float(err[finite].max()) if bool(finite.any()) else float("nan")
    where = f" at index {first}" if first else ""
    raise AssertionError(f"{name}: {int(failing.shape[0])} of {a.numel()} values differ{where}: "
                         f"got {got:.6g}, expected {want:.6g} (largest absolute error {worst:.3g}; "
                         f"rtol={rtol:g}, atol={atol:g})")


_TEMPLATE = "def _blocked(*args, **kwargs):\n    {uses}raise 'ERROR_CLASS'('ERROR_MESSAGE')\n"


def _blocker_code(function: types.FunctionType, message: str) -> types.CodeType | None:
    """A code object that raises ForbiddenCall(message), with ``function``'s free variables
    (a function's ``__code__`` may only be swapped for one with the same closure names)."""
    free = function.__code__.co_freevars
    if free:
        source = ("def _outer():\n    " + "; ".join(f"{v} = None" for v in free) + "\n    "
                  + _TEMPLATE.replace("\n    ", "\n        ").replace("{uses}", "; ".join(free) + "\n        ")
                  + "    return _blocked\n")
    else:
        source = _TEMPLATE.replace("{uses}", "")
    namespace: dict = {}
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)  # "'str' object is not callable": replaced below
        exec(compile(source, "<forbid>", "exec"), namespace)
    blocked = namespace["_outer"]() if free else namespace["_blocked"]
    code = blocked.__code__
    if code.co_freevars != free:
        return None
    consts = tuple(ForbiddenCall if c == "ERROR_CLASS" else message if c == "ERROR_MESSAGE" else c
                   for c in code.co_consts)
    return code.replace(co_consts=consts, co_name=function.__code__.co_name,
                        co_qualname=function.__code__.co_qualname) if sys.version_info >= (3, 11) \
        else code.replace(co_consts=consts, co_name=function.__code__.co_name)


@contextmanager
def forbid(*functions, namespace: dict | None = None):
    """Within the block, calling any of ``functions`` raises :class:`ForbiddenCall`.

    Exercises ask students to write a piece the course package already has; the tests run
    inside ``forbid(...)`` so that an answer which only calls the package earns no points.

    A Python function is blocked whatever reference reaches it (an alias, a default argument,
    ``functools.partial``, a bound method, a copy made with ``types.FunctionType``): its
    ``__code__`` is swapped for one that raises, in the function object itself and in every
    function object sharing its code, then put back. Other callables (builtins, classes) are
    swapped by name in every ``bdl_course`` module and in ``namespace`` (pass ``globals()``).
    """
    swapped_code: list[tuple[types.FunctionType, types.CodeType]] = []
    swapped_names: list[tuple[dict, str, object]] = []

    def message(f) -> str:
        return (f"this exercise asks for your own implementation; "
                f"{getattr(f, '__module__', '?')}.{getattr(f, '__qualname__', repr(f))} may not be called here")

    python_functions = [f for f in functions if isinstance(f, types.FunctionType)]
    others = {id(f): f for f in functions if not isinstance(f, types.FunctionType)}
    try:
        if python_functions:
            by_code = {}
            for f in python_functions:
                by_code.setdefault(f.__code__, f)
            gc.unfreeze()  # frozen objects are invisible to get_objects(): a copy could hide there
            holders = [obj for obj in gc.get_objects()
                       if type(obj) is types.FunctionType and obj.__code__ in by_code]
            for f in python_functions:  # not tracked by gc in rare cases: include them explicitly
                if not any(h is f for h in holders):
                    holders.append(f)
            for holder in holders:
                original = by_code.get(holder.__code__)
                if original is None:
                    continue
                blocker = _blocker_code(holder, message(original))
                if blocker is None:
                    others[id(holder)] = holder
                    continue
                swapped_code.append((holder, holder.__code__))
                holder.__code__ = blocker

        if others:
            def blocker_for(f):
                def blocked(*args, **kwargs):
                    raise ForbiddenCall(message(f))
                return blocked

            places = [vars(m) for name, m in list(sys.modules.items())
                      if m is not None and (name == "bdl_course" or name.startswith("bdl_course."))]
            if namespace is not None:
                places.append(namespace)
            for place in places:
                for key, value in list(place.items()):
                    if id(value) in others and value is others[id(value)]:
                        swapped_names.append((place, key, value))
                        place[key] = blocker_for(value)
        yield
    finally:
        for holder, code in reversed(swapped_code):
            holder.__code__ = code
        for place, key, value in reversed(swapped_names):
            place[key] = value
