"""Markdown to HTML for the problem site: math becomes MathML and code is highlighted, at build time.

Nothing here needs a browser script or the network: a page's formulas are MathML elements that
the browser lays out itself, and its code colours are Pygments spans styled by one CSS file.
"""
from __future__ import annotations

import html
import re
import textwrap
from dataclasses import dataclass, field

import latex2mathml.converter
from markdown_it import MarkdownIt
from mdit_py_plugins.anchors import anchors_plugin
from mdit_py_plugins.dollarmath import dollarmath_plugin
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonConsoleLexer, PythonLexer, TextLexer, get_lexer_by_name
from pygments.util import ClassNotFound

UNKNOWN_COMMAND = re.compile(r"<m[ion]>(\\[A-Za-z]+)</m[ion]>")
# standard LaTeX operator names that latex2mathml does not know; rewritten to \operatorname{...}
MISSING_OPERATORS = re.compile(r"\\(arg)(?![A-Za-z])")
# latex2mathml leaves the & of an `aligned` environment as literal text; `align*` has the same
# columns (right, left, right, left, ...) and becomes a real table
ALIGNED = re.compile(r"\\(begin|end)\{aligned\}")
# an alignment & that did not become a table cell shows on the page as a stray "&"
STRAY_AMPERSAND = re.compile(r"<mi>&(?:amp;)?</mi>")
# \log p comes out as <mi>log</mi><mi>p</mi>, which a browser sets as "logp": add TeX's thin space
# (not before a parenthesis, and not when the name is the base of a sub/superscript)
FUNCTION_NAME = re.compile(r"(?<!<msub>)(?<!<msup>)(?<!<msubsup>)(<mi>(?:log|ln|lg|exp|sin|cos|tan|sinh|cosh|tanh"
                           r'|det|dim|ker|deg|gcd|sec|csc|cot)</mi>)(?!<mo stretchy="false">&#x00028;)')
# latex2mathml keeps TeX escapes inside \text{...} verbatim: \text{cur\_step} would read "cur\_step"
TEXT_RUN, TEXT_ESCAPE = re.compile(r"<mtext>.*?</mtext>"), re.compile(r"\\([_%&#$ {}])")
PYGMENTS_STYLE = "default"  # its colours keep WCAG AA contrast on the light code background


@dataclass
class Rendered:
    """HTML of a markdown text, and what could not be rendered."""

    html: str
    warnings: list[str] = field(default_factory=list)


def tex_to_mathml(tex: str, display: bool) -> str:
    """One formula as a MathML element; the TeX source rides along as an annotation for copying."""
    source = MISSING_OPERATORS.sub(r"\\operatorname{\1}", tex.strip())
    source = ALIGNED.sub(r"\\\1{align*}", source)
    mathml = latex2mathml.converter.convert(source, display="block" if display else "inline")
    mathml = TEXT_RUN.sub(lambda m: TEXT_ESCAPE.sub(r"\1", m.group(0)), mathml)
    mathml = FUNCTION_NAME.sub(r'<mrow>\1<mspace width="0.1667em" /></mrow>', mathml)
    annotation = f'<annotation encoding="application/x-tex">{html.escape(tex.strip())}</annotation>'
    # wrap the body in <semantics> so screen readers and copy-paste can reach the TeX
    head, body = mathml.split(">", 1)
    body = body.removesuffix("</math>")
    return f"{head}><semantics>{body}{annotation}</semantics></math>"


def highlight_code(code: str, lang: str = "python") -> str:
    """Pygments spans in a focusable <pre>, one `<span class="line">` per source line; `>>>` sessions
    get the console lexer.

    A line too long for the text column wraps (style.css): each line carries its indentation as
    `--indent` (in characters), so its continuation is set deeper than the line itself and never
    reads as a line of its own.
    """
    lang = (lang or "").strip().lower()
    if lang in ("python", "py", "") and code.lstrip().startswith(">>>"):
        lexer = PythonConsoleLexer()
    elif lang in ("python", "py"):
        lexer = PythonLexer()
    else:
        try:
            lexer = get_lexer_by_name(lang) if lang else TextLexer()
        except ClassNotFound:
            lexer = TextLexer()
    spans = highlight(code, lexer, HtmlFormatter(nowrap=True))
    lines = spans.split("\n")  # Pygments closes its spans at each line end and reopens them after
    if lines and not lines[-1]:
        lines.pop()
    body = "".join(_code_line(line) for line in lines)
    return f'<pre class="highlight" tabindex="0"><code>{body}</code></pre>'


def _code_line(line: str) -> str:
    text = html.unescape(re.sub(r"<[^>]+>", "", line))
    indent = len(text) - len(text.lstrip(" "))
    style = f' style="--indent: {indent}"' if indent and text.strip() else ""
    return f'<span class="line"{style}>{line}\n</span>'


def pygments_css() -> str:
    """The stylesheet of highlighted code."""
    return HtmlFormatter(style=PYGMENTS_STYLE).get_style_defs(".highlight")


def _shift_headings(md: MarkdownIt, top_level: int, drop_title: bool) -> None:
    """Make the document's highest heading level `top_level` (h1 of a file -> h2/h3 of the page).

    With drop_title, a leading level-1 heading is removed: the page already shows the title.
    """

    def rule(state) -> None:
        tokens = state.tokens
        if drop_title and len(tokens) >= 3 and tokens[0].type == "heading_open" and tokens[0].tag == "h1":
            del tokens[:3]
        levels = [int(t.tag[1]) for t in tokens if t.type == "heading_open"]
        if not levels:
            return
        shift = top_level - min(levels)
        for t in tokens:
            if t.type in ("heading_open", "heading_close"):
                t.tag = f"h{min(6, int(t.tag[1]) + shift)}"

    md.core.ruler.push("shift_headings", rule)


def render_markdown(text: str, *, id_prefix: str, top_level: int | None = 2, drop_title: bool = False) -> Rendered:
    """Render one problem file; failures to convert a formula come back as warnings, not crashes.
    Headings are shifted so the highest is `top_level`; None keeps them as written."""
    warnings: list[str] = []

    def math(tex: str, opts: dict) -> str:
        try:
            mathml = tex_to_mathml(tex, display=opts.get("display_mode", False))
        except Exception as exc:  # latex2mathml raises several types for unsupported TeX
            warnings.append(f"cannot convert ${tex}$ to MathML: {exc}")
            return f'<code class="tex-fallback">{html.escape(tex)}</code>'
        unknown = UNKNOWN_COMMAND.findall(mathml)
        if unknown:  # latex2mathml keeps a command it does not know as literal text
            warnings.append(f"unsupported TeX command {', '.join(unknown)} in ${tex}$")
        if STRAY_AMPERSAND.search(mathml):
            warnings.append(f"an alignment & outside a matrix, cases or align* in ${tex}$ would show as text")
        return mathml

    md = MarkdownIt("commonmark", {"html": True, "highlight": lambda code, lang, _attrs: highlight_code(code, lang)})
    md.enable("table")
    md.use(dollarmath_plugin, renderer=math, allow_digits=False, double_inline=True)  # $$..$$ inside a list item too
    if top_level is not None:
        _shift_headings(md, top_level, drop_title)
    md.use(anchors_plugin, min_level=1, max_level=6, slug_func=lambda s: f"{id_prefix}-{_slug(s)}")
    # a wide display formula scrolls in its own box; tabindex lets a keyboard scroll it too
    page = md.render(text).replace('<div class="math block">', '<div class="math block" tabindex="0">')
    return Rendered(page, warnings)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def split_list_items(text: str) -> tuple[str, list[str]]:
    """(text before the list, one markdown string per top-level item) of a hints file.

    A top-level item starts at column 0 with `-`, `*`, `+` or `N.`; indented lines continue it.
    A file without a top-level list is one item.
    """
    intro: list[str] = []
    items: list[list[str]] = []
    marker = re.compile(r"^(?:[-*+]|\d+[.)])\s+")
    in_fence = False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        m = None if in_fence else marker.match(line)
        if m:
            items.append([line[m.end():]])
        elif items:
            items[-1].append(line)
        else:
            intro.append(line)
    if not items:
        return "", [text] if text.strip() else []
    return "\n".join(intro).strip(), [(first + "\n" + textwrap.dedent("\n".join(rest))).strip()
                                      for first, *rest in items]
