"""nbgrader configuration for the course.

solutions/ is nbgrader's *source* (full solutions and hidden tests); lessons/ is its *release*
(the student versions, committed). Grading never runs here: `make grade` and the tests copy
the course into a scratch folder first, so no gradebook or submissions pile up in the repo.
"""
import nbformat
from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

c = get_config()  # noqa: F821  (injected by nbgrader)


class HideHiddenTestOutputs(Preprocessor):
    """Feedback says *that* a hidden test failed, never *what* it tests.

    nbgrader's ClearHiddenTests removes hidden tests from a cell's source, but a failing
    assert's traceback quotes the hidden source lines (and its message may quote expected
    values), so this replaces the outputs of hidden-test cells with the error's type only.
    """

    enabled = Bool(True)  # nbconvert preprocessors are off unless enabled

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and "BEGIN HIDDEN TESTS" in cell.source:
            errors = [out for out in cell.outputs if out.output_type == "error"]
            cell.outputs = [nbformat.v4.new_output(
                "stream", name="stderr", text=f"Hidden tests failed ({errors[0].ename}).\n")] if errors else []
        return cell, resources


class DropTestResults(Preprocessor):
    """No partial credit from results: nbgrader scores a test cell by its first numeric
    `execute_result`, which an answer can print from inside the test (`sys.displayhook(3)`).
    The course's test cells pass or fail by raising, so their results are dropped before scoring.
    (tools/grade.py does this and more in its sandbox; this covers `nbgrader autograde`.)"""

    enabled = Bool(True)

    def preprocess_cell(self, cell, resources, index):
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            cell.outputs = [out for out in cell.outputs if out.output_type != "execute_result"]
        return cell, resources


c.CourseDirectory.course_id = "bdl-course"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "lessons"
c.CourseDirectory.notebook_id = "*"
# Lessons are released one folder per lesson; nothing else in a lesson folder is copied.
c.CourseDirectory.include = ["*.ipynb"]

# Students see the visible asserts; hidden tests are removed from the release...
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# ...and from the feedback they get back: nbgrader's default feedback shows them, and even with
# ClearHiddenTests a failing hidden assert's traceback would quote them.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    HideHiddenTestOutputs,
    "nbgrader.preprocessors.ClearHiddenTests",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]

# A test cell a student deleted is put back and scored, instead of silently scoring nothing.
c.OverwriteCells.add_missing_cells = True

# Per-cell limit while autograding: the slowest cell of any lesson (training) takes well
# under a minute on a 2-core CPU; an infinite loop costs this much per cell that calls it.
c.Execute.timeout = 120

# nbgrader scores a test cell 0 when it wrote anything to stderr, so a correct answer that
# calls warnings.warn or logging.warning (or that torch warns about) would lose the cell's
# points. A test fails by raising, never by printing: drop every stderr stream before scoring.
c.IgnorePattern.enabled = True
c.Autograde.autograde_preprocessors = [
    "nbgrader.preprocessors.Execute",
    DropTestResults,
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
c.IgnorePattern.pattern = r"(?s)."
