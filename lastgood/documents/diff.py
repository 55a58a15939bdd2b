"""The diff between two versions of a document, and the counts people read first (+3 -1).

Works on normalized content. Text gets a unified diff; content that is not text (``bytes``
mode on a binary file) gets one line saying how its size changed, because a hex dump helps
nobody. Pure functions; nothing here reads or writes anything.
"""

from __future__ import annotations

import difflib

from lastgood.record import Record

_CONTEXT = 3
_BINARY_SNIFF = 8192
_NO_NEWLINE = "\\ No newline at end of file"


class DocumentDiff(Record):
    """A diff and its line counts; ``text`` is never empty when the contents differ."""

    text: str
    added: int
    removed: int
    binary: bool = False


def is_text(content: bytes) -> bool:
    """Whether ``content`` is UTF-8 text (no NUL bytes), i.e. worth a line-by-line diff."""
    if b"\0" in content[:_BINARY_SNIFF]:
        return False
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def diff(old: bytes, new: bytes, *, old_label: str, new_label: str) -> DocumentDiff:
    """Unified diff of ``old`` → ``new`` (labels name the two sides in the header)."""
    if old == new:
        return DocumentDiff("", 0, 0)
    if not (is_text(old) and is_text(new)):
        line = f"binary content changed ({len(old)} → {len(new)} bytes)"
        return DocumentDiff(line, 0, 0, binary=True)
    before, after = _lines(old.decode("utf-8")), _lines(new.decode("utf-8"))
    lines = list(
        difflib.unified_diff(before, after, fromfile=old_label, tofile=new_label, n=_CONTEXT)
    )
    body = lines[2:]  # after the ---/+++ header, every +/- line is a line of content
    added = sum(1 for line in body if line.startswith("+"))
    removed = sum(1 for line in body if line.startswith("-"))
    return DocumentDiff("".join(_visible(line) for line in lines), added, removed)


def _lines(text: str) -> list[str]:
    """Lines split at LF only, each keeping its ending (``str.splitlines`` would also split at
    form feeds and Unicode separators, which are content here)."""
    parts = text.split("\n")
    return [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _visible(line: str) -> str:
    """One diff line ending in exactly one newline, with differences people cannot see on
    screen made visible: a carriage return (only ``bytes`` mode keeps them) and a missing
    final newline, so a diff is never blank when the contents differ."""
    body, ended = (line[:-1], True) if line.endswith("\n") else (line, False)
    if body.endswith("\r"):
        body = body[:-1] + "␍"
    return f"{body}\n" if ended else f"{body}\n{_NO_NEWLINE}\n"
