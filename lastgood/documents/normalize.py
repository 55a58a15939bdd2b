"""Normalization: the canonical form a document is compared, stored and diffed in.

A change is only worth an alert when a person reading the diff sees it. Line endings, trailing
spaces, JSON key order and HTML markup change all the time without changing what a document
says, so each mode keeps only what matters and spells it one way:

- ``text``  — UTF-8 (undecodable bytes replaced), LF line endings, no trailing spaces, no
  trailing blank lines, exactly one final newline;
- ``json``  — parsed and dumped again with sorted keys and an indent of 2;
- ``html``  — the visible text only, one line per block element, whitespace collapsed;
- ``bytes`` — as is: any difference counts.

Pure functions; nothing here reads or writes anything.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser

from lastgood.errors import DocumentError

MODES = ("text", "json", "html", "bytes")


def normalize(raw: bytes, mode: str, *, label: str = "the content") -> bytes:
    """``raw`` in its canonical form for ``mode``; DocumentError (naming ``label``) when
    ``json`` content does not parse."""
    if mode == "text":
        return normalize_text(raw.decode("utf-8", "replace")).encode()
    if mode == "json":
        return _normalize_json(raw, label).encode()
    if mode == "html":
        return normalize_text(visible_text(raw.decode("utf-8", "replace"))).encode()
    if mode == "bytes":
        return raw
    raise ValueError(f"unknown normalization {mode!r}; known: {', '.join(MODES)}")


def normalize_text(text: str) -> str:
    """One spelling of the same text: LF endings, no trailing whitespace, one final newline.

    A byte-order mark is dropped too: editors add and remove it without anyone noticing."""
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.rstrip() for line in text.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines) + "\n" if lines else ""


def _normalize_json(raw: bytes, label: str) -> str:
    try:
        document = json.loads(raw)
    except UnicodeDecodeError as exc:
        raise DocumentError(
            f"{label} is not valid JSON: it is not UTF-8 text ({exc.reason})",
            hint='fix the source, or track it with normalize = "text" or "bytes"',
        ) from exc
    except json.JSONDecodeError as exc:
        raise DocumentError(
            f"{label} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            hint='fix the source, or track it with normalize = "text" if it is not JSON',
        ) from exc
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


# Content of these elements is never shown to a reader of the page.
_HIDDEN = frozenset({"script", "style", "head", "noscript", "template", "svg"})
# Elements that start a new line when rendered; everything else flows inline.
_BLOCKS = frozenset(
    {
        *("address", "article", "aside", "blockquote", "br", "caption", "dd", "details", "div"),
        *("dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3"),
        *("h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section"),
        *("summary", "table", "tbody", "td", "tfoot", "th", "thead", "title", "tr", "ul"),
    }
)


class _VisibleText(HTMLParser):
    """Collects the text a browser would show, with a line break at every block element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hidden: list[str] = []
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body" and "head" in self.hidden:
            self.hidden.remove("head")  # a page that never closes <head>
        if tag in _HIDDEN:
            self.hidden.append(tag)
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS:  # <br/>, <hr/>: a break, never an element to skip into
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            if tag in self.hidden:
                while self.hidden and self.hidden.pop() != tag:
                    pass
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def visible_text(html: str) -> str:
    """The text of ``html`` a person sees: one line per block, whitespace collapsed, hidden
    elements (scripts, styles, the head) left out."""
    parser = _VisibleText()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).split("\n"))
    return "\n".join(line for line in lines if line)
