"""Specification of bdl_course.grading.forbid: an exercise may not call the course's own answer."""
import sys

import pytest
import torch

import bdl_course
from bdl_course import grading, layers, metrics, predict, utils
from bdl_course.grading import ForbiddenCall


def test_calling_a_forbidden_function_through_its_module_raises_forbidden_call():
    with grading.forbid(layers.kl_normal):
        with pytest.raises(ForbiddenCall, match="kl_normal may not be called"):
            layers.kl_normal(torch.zeros(1), torch.ones(1), 0.0, 1.0)


def test_calling_a_forbidden_function_through_an_alias_in_the_namespace_raises():
    notebook = {"my_alias": predict.logmeanexp, "unrelated": predict.summarize}
    with grading.forbid(predict.logmeanexp, namespace=notebook):
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
        assert all(m.check_tensor is not original for m in holders)
        with pytest.raises(ForbiddenCall):
            metrics.check_tensor("x", torch.zeros(1))
    assert all(m.check_tensor is original for m in holders)


def test_functions_not_listed_keep_working_inside_the_block():
    with grading.forbid(layers.kl_normal):
        assert metrics.rmse(torch.zeros(2), torch.zeros(2)) == 0.0


def test_forbidden_call_is_an_assertion_error_so_a_grader_counts_it_as_a_failed_test():
    assert issubclass(ForbiddenCall, AssertionError)


def test_originals_are_restored_after_the_block():
    original_kl, original_rmse = layers.kl_normal, metrics.rmse
    notebook = {"k": original_kl}
    with grading.forbid(original_kl, original_rmse, namespace=notebook):
        assert layers.kl_normal is not original_kl and notebook["k"] is not original_kl
        assert metrics.rmse is not original_rmse
    assert layers.kl_normal is original_kl and metrics.rmse is original_rmse
    assert notebook["k"] is original_kl
    assert layers.kl_normal(torch.ones(1), torch.ones(1), 0.0, 1.0).item() > 0  # callable again


def test_originals_are_restored_when_the_block_raises():
    original = predict.logmeanexp
    notebook = {"f": original}
    with pytest.raises(KeyError):
        with grading.forbid(original, namespace=notebook):
            raise KeyError("an answer failed")
    assert predict.logmeanexp is original and notebook["f"] is original
