"""A security rule of the site: no built file may hold a line, or a copy, of `solutions/` or
`graders/`. `build_site` runs `find_leaks` on every build and removes a site that fails it."""
from __future__ import annotations

import hashlib
import html
import json
import re
from pathlib import Path

MIN_SECRET_LINE = 16  # shorter lines ("import torch", "return x") are not evidence of a leak


def _visible_text(path: Path) -> str:
    """What a reader of a built file can see: HTML without tags (code is split into spans), notebook sources."""
    data = path.read_bytes().decode("utf-8", errors="replace")
    if path.suffix == ".html":
        return data + "\n" + html.unescape(re.sub(r"<[^>]+>", "", data))
    if path.suffix == ".ipynb":
        try:
            cells = json.loads(data).get("cells", [])
        except (json.JSONDecodeError, AttributeError):
            return data
        return data + "\n" + "\n".join("".join(c.get("source", "")) + json.dumps(c.get("outputs", []))
                                       for c in cells)
    return data


def _text_files(folder: Path) -> list[Path]:
    """Every file under `folder` (none when it does not exist), compiled caches aside."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def _normalize(text: str) -> str:
    """Markdown's code and emphasis marks off, whitespace collapsed: how a line reads on a page."""
    return re.sub(r"\s+", " ", re.sub(r"[`*]", "", text))


def _secrets(root: Path) -> tuple[set[str], dict[str, Path]]:
    """(normalized secret lines, sha256 -> file) of `solutions/` and `graders/`.

    A secret line is one of at least MIN_SECRET_LINE characters that no public file under
    `problems/` contains (a starter's `def` line or a docstring the statement repeats is public).
    """
    public_files = _text_files(root / "problems")
    public = _normalize("\n".join(p.read_bytes().decode("utf-8", errors="replace") for p in public_files))
    public_hashes = {hashlib.sha256(p.read_bytes()).hexdigest() for p in public_files}
    lines: set[str] = set()
    hashes: dict[str, Path] = {}
    for path in _text_files(root / "solutions") + _text_files(root / "graders"):
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if data and digest not in public_hashes:
            hashes[digest] = path
        for line in data.decode("utf-8", errors="ignore").splitlines():
            line = _normalize(line).strip()
            if len(line) >= MIN_SECRET_LINE and line not in public:
                lines.add(line)
    return lines, hashes


def find_leaks(site: Path, root: Path) -> list[str]:
    """Every place a built file holds a secret line, or a whole file, of `solutions/` or `graders/`."""
    lines, hashes = _secrets(root)
    found = []
    for built in _text_files(site):
        where = built.relative_to(site)
        digest = hashlib.sha256(built.read_bytes()).hexdigest()
        if digest in hashes:
            found.append(f"{where} is a copy of {hashes[digest].relative_to(root)}")
        text = _normalize(_visible_text(built))
        found += [f"{where} contains {line!r}" for line in sorted(lines) if line in text]
    return found
