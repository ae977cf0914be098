"""The site's "Your results" page: attempts per problem from the gradebook, latest verdicts."""
from __future__ import annotations

import re
from collections import OrderedDict

def results_context(gradebook_url: str | None, pages: list) -> dict:
    """Attempts per problem, newest first, with the latest attempt's verdicts (template context)."""
    from runner.records.gradebook import Gradebook, default_url

    url = gradebook_url or default_url()
    rows = Gradebook(url).history(limit=100_000)
    titles = {p.pdir.key: (p.meta.title, p.href) for p in pages}
    by_problem: OrderedDict[str, list] = OrderedDict()
    for row in sorted(rows, key=lambda r: r.problem):
        by_problem.setdefault(row.problem, []).append(row)
    problems = []
    for key, attempts in by_problem.items():
        attempts.sort(key=lambda r: r.id, reverse=True)
        scores = [r.score for r in attempts if r.score is not None]
        title, href = titles.get(key, (key, None))
        problems.append({"key": key, "title": title, "href": href, "attempts": attempts,
                         "latest": attempts[0], "latest_result": attempts[0].result(),
                         "best": max(scores) if scores else None})
    return {"problems": problems, "gradebook": _redact_url(url)}


def _redact_url(url: str) -> str:
    """A database URL without its password, for the page footer."""
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)
