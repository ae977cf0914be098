"""The static problem site: `grader site build` and `grader site serve`.

    build         the index and a page per problem, from the public problems/ folders only
    markdown      statements to HTML, math to MathML at build time, highlighted code
    results_page  "Your results", from the gradebook
    leaks         the rule that no built file holds a line of solutions/ or graders/
    serve         a loopback static file server

Templates and assets live in the checkout's site/ folder (not an importable package).
"""
