"""Helpers for the exercises' test cells."""
from __future__ import annotations

import sys
from contextlib import contextmanager


class ForbiddenCall(AssertionError):
    """Raised when an exercise answer calls the course's own implementation."""


@contextmanager
def forbid(*functions, namespace: dict | None = None):
    """Within the block, calling any of ``functions`` raises :class:`ForbiddenCall`.

    Exercises ask students to write a piece the course package already has; the tests run
    inside ``forbid(...)`` so that an answer which only calls the package earns no points.
    Every ``bdl_course`` module attribute and every name in ``namespace`` (pass the
    notebook's ``globals()``) bound to one of the functions is swapped out, then restored.
    """
    targets = {id(f): f for f in functions}
    swapped = []

    def blocker(f):
        def blocked(*args, **kwargs):
            raise ForbiddenCall(f"this exercise asks for your own implementation; "
                                f"{f.__module__}.{f.__qualname__} may not be called here")
        return blocked

    places = [vars(m) for name, m in list(sys.modules.items())
              if m is not None and (name == "bdl_course" or name.startswith("bdl_course."))]
    if namespace is not None:
        places.append(namespace)
    for place in places:
        for key, value in list(place.items()):
            if id(value) in targets and value is targets[id(value)]:
                swapped.append((place, key, value))
                place[key] = blocker(value)
    try:
        yield
    finally:
        for place, key, value in swapped:
            place[key] = value
