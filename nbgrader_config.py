"""nbgrader configuration for the course.

solutions/ is nbgrader's *source* (full solutions and hidden tests); lessons/ is its *release*
(the student versions, committed). Grading never runs here: `make grade` and the tests copy
the course into a scratch folder first, so no gradebook or submissions pile up in the repo.
"""
c = get_config()  # noqa: F821  (injected by nbgrader)

c.CourseDirectory.course_id = "bdl-course"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "lessons"
c.CourseDirectory.notebook_id = "*"
# Lessons are released one folder per lesson; nothing else in a lesson folder is copied.
c.CourseDirectory.include = ["*.ipynb"]

# Students see the visible asserts; hidden tests are removed from the release...
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# ...and from the feedback they get back (by default nbgrader's feedback would show them).
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbgrader.preprocessors.ClearHiddenTests",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]

# A test cell a student deleted is put back and scored, instead of silently scoring nothing.
c.OverwriteCells.add_missing_cells = True

# Per-cell limit while autograding: the slowest cell of any lesson (training) takes well
# under a minute on a 2-core CPU; an infinite loop costs this much per cell that calls it.
c.Execute.timeout = 120
c.Execute.allow_errors = True
