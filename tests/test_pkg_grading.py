"""Specification of bdl_course.grading.forbid: an exercise may not call the course's own answer."""
import sys

import pytest
import torch

import bdl_course
from bdl_course import functional, grading, metrics, predict, predictive, utils
from bdl_course.grading import ForbiddenCall


def test_calling_a_forbidden_function_through_its_module_raises_forbidden_call():
    with grading.forbid(functional.kl_normal):
        with pytest.raises(ForbiddenCall, match="kl_normal may not be called"):
            functional.kl_normal(torch.zeros(1), torch.ones(1), 0.0, 1.0)


def test_calling_a_forbidden_function_through_an_alias_in_the_namespace_raises():
    notebook = {"my_alias": predictive.logmeanexp, "unrelated": predict.summarize}
    with grading.forbid(predictive.logmeanexp, namespace=notebook):
        with pytest.raises(ForbiddenCall, match="logmeanexp"):
            notebook["my_alias"](torch.zeros(3))
        assert notebook["unrelated"] is predict.summarize  # only the listed functions are blocked


def test_the_package_level_re_export_is_blocked_too():
    with grading.forbid(bdl_course.utils.seed_everything):
        with pytest.raises(ForbiddenCall):
            bdl_course.seed_everything(0)


def test_every_bdl_course_module_that_imported_the_function_gets_the_blocker():
    # check_tensor is imported by name into several modules; each binding must be swapped,
    # else an answer could reach the original through any of them
    holders = [m for name, m in sorted(sys.modules.items())
               if name.startswith("bdl_course") and getattr(m, "check_tensor", None) is utils.check_tensor]
    assert len(holders) >= 3
    original = utils.check_tensor
    with grading.forbid(original):
        for m in holders:
            with pytest.raises(ForbiddenCall):
                m.check_tensor("x", torch.zeros(1))
    assert all(m.check_tensor is original for m in holders)
    metrics.check_tensor("x", torch.zeros(1))


def test_functions_not_listed_keep_working_inside_the_block():
    with grading.forbid(functional.kl_normal):
        assert metrics.rmse(torch.zeros(2), torch.zeros(2)) == 0.0


def test_forbidden_call_is_an_assertion_error_so_a_grader_counts_it_as_a_failed_test():
    assert issubclass(ForbiddenCall, AssertionError)


def test_originals_are_restored_after_the_block():
    original_kl, original_rmse = functional.kl_normal, metrics.rmse
    notebook = {"k": original_kl}
    with grading.forbid(original_kl, original_rmse, namespace=notebook):
        with pytest.raises(ForbiddenCall):
            notebook["k"](torch.ones(1), torch.ones(1), 0.0, 1.0)
        with pytest.raises(ForbiddenCall):
            metrics.rmse(torch.zeros(2), torch.zeros(2))
    assert functional.kl_normal is original_kl and metrics.rmse is original_rmse
    assert notebook["k"] is original_kl
    assert functional.kl_normal(torch.ones(1), torch.ones(1), 0.0, 1.0).item() > 0  # callable again


def test_originals_are_restored_when_the_block_raises():
    original = predictive.logmeanexp
    notebook = {"f": original}
    with pytest.raises(KeyError):
        with grading.forbid(original, namespace=notebook):
            raise KeyError("an answer failed")
    assert predictive.logmeanexp is original and notebook["f"] is original


# --- forbid blocks the function whatever reference reaches it (issue 11 §1) ---------------

def test_a_default_argument_holding_the_function_is_blocked():
    def answer(x, f=predictive.logmeanexp):
        return f(x)
    with grading.forbid(predictive.logmeanexp):
        with pytest.raises(ForbiddenCall, match="logmeanexp"):
            answer(torch.zeros(3))
    assert answer(torch.zeros(3)).shape == ()  # works again after the block


def test_functools_partial_and_containers_holding_the_function_are_blocked():
    import functools
    part = functools.partial(functional.kl_normal, torch.ones(1))
    table = {"kl": functional.kl_normal}
    with grading.forbid(functional.kl_normal):
        with pytest.raises(ForbiddenCall):
            part(torch.ones(1), 0.0, 1.0)
        with pytest.raises(ForbiddenCall):
            table["kl"](torch.zeros(1), torch.ones(1), 0.0, 1.0)
    assert part(torch.ones(1), 0.0, 1.0).item() > 0


def test_a_copy_sharing_the_code_and_a_bound_method_are_blocked():
    import types as _types
    copy_ = _types.FunctionType(predictive.logmeanexp.__code__, predictive.logmeanexp.__globals__, "mine",
                                predictive.logmeanexp.__defaults__, predictive.logmeanexp.__closure__)

    class Holder:
        method = predictive.logmeanexp

    bound = Holder().method  # a bound method wrapping the function
    with grading.forbid(predictive.logmeanexp):
        with pytest.raises(ForbiddenCall):
            copy_(torch.zeros(3))
        with pytest.raises(ForbiddenCall):
            bound()
    assert copy_(torch.zeros(3)).shape == ()


def test_a_copy_hidden_from_the_collector_with_gc_freeze_is_blocked():
    # gc.get_objects() skips frozen objects: a copy made, then frozen, would otherwise escape
    import gc
    import types as _types
    copy_ = _types.FunctionType(predictive.logmeanexp.__code__, predictive.logmeanexp.__globals__, "hidden",
                                predictive.logmeanexp.__defaults__)
    gc.freeze()
    try:
        with grading.forbid(predictive.logmeanexp):
            with pytest.raises(ForbiddenCall):
                copy_(torch.zeros(3))
    finally:
        gc.unfreeze()
    assert copy_(torch.zeros(3)).shape == ()


def test_a_function_with_a_closure_can_be_forbidden_and_restored():
    scale = 3.0

    def helper(x):
        return x * scale
    alias = helper
    with grading.forbid(helper):
        with pytest.raises(ForbiddenCall, match="helper"):
            alias(1.0)
    assert alias(2.0) == 6.0


def test_an_honest_function_with_the_same_body_is_not_blocked():
    def my_square(x):
        return x * x

    def the_package_square(x):
        return x * x
    with grading.forbid(the_package_square):
        assert my_square(3) == 9


def test_builtin_callables_are_still_swapped_by_name():
    notebook = {"lse": torch.logsumexp}
    with grading.forbid(torch.logsumexp, namespace=notebook):
        with pytest.raises(ForbiddenCall):
            notebook["lse"](torch.zeros(2), 0)
    assert notebook["lse"] is torch.logsumexp


# --- assert_close: one dtype rule for the whole course ------------------------------------

@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_assert_close_accepts_any_floating_dtype(dtype):
    expected = torch.tensor([0.5, -1.25, 3.0], dtype=torch.float32)
    grading.assert_close(expected.to(dtype), expected, rtol=1e-2, atol=0, name="mean")


def test_assert_close_compares_floats_tensors_and_lists_in_float64():
    grading.assert_close(0.1 + 0.2, torch.tensor(0.3, dtype=torch.float64), rtol=1e-12, atol=0)
    grading.assert_close([1.0, 2.0], torch.tensor([1.0, 2.0]), name="pair")
    grading.assert_close(torch.tensor(2), 2.0)  # an integer answer for an integral value


def test_assert_close_names_the_quantity_and_the_first_wrong_value():
    with pytest.raises(AssertionError, match=r"the ELBO: 1 of 3 values differ at index \(1,\): got 5, expected 2"):
        grading.assert_close(torch.tensor([1.0, 5.0, 3.0]), torch.tensor([1.0, 2.0, 3.0]), name="the ELBO")


def test_assert_close_refuses_a_different_shape():
    with pytest.raises(AssertionError, match=r"shape \(1,\), expected shape \(\)"):
        grading.assert_close(torch.tensor([1.0]), 1.0, name="x")
    with pytest.raises(AssertionError, match="shape"):
        grading.assert_close(torch.zeros(3, 1), torch.zeros(3))  # broadcasting is not equality


def test_assert_close_handles_nan_inf_and_non_numbers():
    with pytest.raises(AssertionError):
        grading.assert_close(float("nan"), 1.0)
    with pytest.raises(AssertionError):
        grading.assert_close(float("nan"), float("nan"))
    grading.assert_close(float("nan"), float("nan"), equal_nan=True)
    grading.assert_close(torch.tensor([float("-inf"), 1.0]), torch.tensor([float("-inf"), 1.0]))
    with pytest.raises(AssertionError):
        grading.assert_close(float("inf"), float("-inf"))
    with pytest.raises(AssertionError, match="should be a number or a tensor, got NoneType"):
        grading.assert_close(None, 1.0, name="kl")
    with pytest.raises(AssertionError, match="complex"):
        grading.assert_close(torch.tensor([1 + 1j]), torch.tensor([1.0]))


def test_assert_close_uses_the_tolerances():
    grading.assert_close(1.0 + 1e-6, 1.0)  # default rtol 1e-5
    with pytest.raises(AssertionError):
        grading.assert_close(1.001, 1.0, rtol=1e-4, atol=0)
    grading.assert_close(1.001, 1.0, rtol=0, atol=1e-2)


def test_assert_close_is_not_fooled_by_a_tensor_subclass_or_a_patched_torch(monkeypatch):
    class AlwaysEqual(torch.Tensor):
        def __eq__(self, other):
            return True

        def __le__(self, other):
            return torch.ones_like(torch.Tensor.as_subclass(self, torch.Tensor), dtype=torch.bool)

        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            return torch.tensor(True)

    cheat = torch.tensor([9.0, 9.0]).as_subclass(AlwaysEqual)
    with pytest.raises(AssertionError, match="differ"):
        grading.assert_close(cheat, torch.tensor([1.0, 2.0]))
    monkeypatch.setattr(torch, "allclose", lambda *a, **k: True)
    monkeypatch.setattr(torch, "isclose", lambda *a, **k: torch.tensor(True))
    with pytest.raises(AssertionError):
        grading.assert_close(torch.tensor([9.0]), torch.tensor([1.0]))
