"""Jupyter: solving in a notebook, the problems' generated notebooks, and nbgrader courses.

    kernel     `%%solution` cells and the calls that grade them (`%load_ext runner.jupyter`)
    notebooks  each problem's notebook, generated from its folder
    course     an nbgrader course whose test cells call the sandboxed grader

A notebook imports the solver-facing calls from here: `from runner.jupyter import submit`.
"""
from runner.jupyter.kernel import (NoSolution, autograde, load_ipython_extension, public_tests, record,  # noqa: F401
                                   submit)
