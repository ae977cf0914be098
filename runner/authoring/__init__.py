"""Writing problems and working on them: the instructor's and the solver's folders.

    scaffold    `grader new` (a problem's three folders) and `grader start` (a solver's working folder)
    mutants     realistic mistakes, as edits of the reference (graders/NNN-slug/mutants.toml)
    validation  `grader validate`: metadata, files, statement, reference, starter, mutants
"""
