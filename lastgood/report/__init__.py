"""Render a :class:`~lastgood.report.digest.Digest` as ``text``, ``markdown``, ``html`` or
``json``.

One digest, four readers: a terminal or a plain message (``text``), a chat channel
(``markdown``), an email (``html``: one self-contained page, inline CSS, autoescaped Jinja2) and
scripts (``json``). Jinja2 is imported only when HTML is asked for.
"""

from __future__ import annotations

import json

from lastgood.errors import UsageError
from lastgood.report.digest import Digest
from lastgood.report.words import summary, title

FORMATS = ("text", "markdown", "html", "json")

__all__ = ["FORMATS", "render", "summary", "title"]


def render(digest: Digest, fmt: str) -> str:
    """The digest in format ``fmt`` (one of :data:`FORMATS`); UsageError for any other."""
    if fmt == "text":
        from lastgood.report.text import render_text

        return render_text(digest)
    if fmt == "markdown":
        from lastgood.report.markdown import render_markdown

        return render_markdown(digest)
    if fmt == "html":
        from lastgood.report.html import render_html

        return render_html(digest)
    if fmt == "json":
        return json.dumps(digest.to_json(), indent=2) + "\n"
    raise UsageError(f"unknown digest format {fmt!r}", hint=f"use one of: {', '.join(FORMATS)}")
