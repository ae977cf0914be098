"""Writing problems and working on them: the instructor's and the solver's folders.

    scaffold    `grader new` (a problem's three folders) and `grader start` (a solver's working folder)
    mutants     realistic mistakes, as edits of the reference, and declared equivalent mutants (mutants.toml)
    coverage    the coverage map: each behaviour of the statement and its tests (coverage.toml)
    alternatives  other correct solutions, each must score full marks (alternatives/*.py)
    validation  `grader validate`: metadata, files, statement, coverage, reference, alternatives, starter, mutants
    operators   mutants of a reference, made by cosmic-ray's operators
    mutation    `grader validate --mutate`: those mutants graded; the mutation score
"""
