"""Masking: secret values become markers in every view, the same marker for the same value.

A marker is ``••••••#N``: N numbers the distinct secret values of one *view* (one diff, one
file shown, one alert) in the order they are first seen, old side first. So within a view

- an unchanged secret looks the same on both sides, and a diff never shows it;
- a changed secret gets a new number, so the diff shows the line, and the new side says
  ``(new value)``: that it changed is visible, the value is not;
- two keys holding the same value show the same number (a rotation is visible as a swap).

No hash of the value is shown: a short hash of a low-entropy password can be brute-forced
offline, while a number that means nothing outside its view gives nothing to work on. What a
view does tell is which of its secret values are equal to each other, and a secret file's size.

A file whose whole content is secret (``[secrets] paths``) shows as one line,
``(secret file: N bytes)``, and ``(secret file: N bytes, changed)`` on the new side of a diff.
Binary files are left alone: no view shows their content. Nothing here reads or writes.
"""

from __future__ import annotations

import bisect
import re

from lastgood.secrets.policy import DEFAULT_POLICY, SecretPolicy
from lastgood.secrets.values import MARK, Span, anywhere_values, line_spans, overlaps

NEW = " (new value)"
MARKERS = re.compile(re.escape(MARK) + r"#\d+(?: \(new value\))?|\(secret file: [^)]*\)")
_WORD = "A-Za-z0-9_"


class Masker:
    """Masks the files and diffs of one view; make one per view, so numbers mean nothing
    outside it. ``policy`` None means the defaults."""

    def __init__(self, policy: SecretPolicy | None = None) -> None:
        self.policy = policy or DEFAULT_POLICY
        self._numbers: dict[str, int] = {}
        self.masked = 0
        """How many values and files this view has masked so far."""

    def content(self, path: str, data: bytes) -> bytes:
        """One file as a content view shows it."""
        if self.policy.is_secret_file(path):
            self.masked += 1
            return f"(secret file: {len(data)} bytes)\n".encode()
        text = _text(data)
        if text is None:
            return data
        values = anywhere_values(path, text, self.policy)
        return self._lines(text, values, set()).encode("utf-8")

    def pair(
        self, path: str, old: bytes | None, new: bytes | None
    ) -> tuple[bytes | None, bytes | None]:
        """Both sides of one file in a diff (None: the file is not on that side)."""
        if self.policy.is_secret_file(path):
            return self._secret_file(old, new)
        old_text = None if old is None else _text(old)
        new_text = None if new is None else _text(new)
        if (old is not None and old_text is None) or (new is not None and new_text is None):
            return old, new  # binary: the diff names it, no line of it is shown
        values = set()
        for text in (old_text, new_text):
            if text is not None:
                values |= anywhere_values(path, text, self.policy)
        seen: set[str] = set()
        masked_old = None if old_text is None else self._lines(old_text, values, seen)
        fresh = None if old_text is None else seen
        masked_new = None if new_text is None else self._lines(new_text, values, set(), fresh)
        return _bytes(masked_old), _bytes(masked_new)

    def diff(self, text: str) -> str:
        """An already made unified diff, masked line by line (headers kept as they are)."""
        old_lines = [line[1:] for line in text.splitlines() if _body(line) and line[0] != "+"]
        values: set[str] = set()
        for side in ("\n".join(old_lines), "\n".join(_added(text))):
            values |= anywhere_values("", side, self.policy)
        seen: set[str] = set()
        self._lines("\n".join(old_lines), values, seen)
        out = []
        for line in text.splitlines(keepends=True):
            if not _body(line):
                out.append(line)
                continue
            fresh = seen if line[0] == "+" else None
            out.append(line[0] + self._lines(line[1:], values, set(), fresh))
        return "".join(out)

    def marker(self, value: str) -> str:
        """``••••••#N`` for ``value``: the same N for the same value within this view."""
        number = self._numbers.setdefault(value, len(self._numbers) + 1)
        return f"{MARK}#{number}"

    def _mark(self, value: str, seen: set[str], fresh: set[str] | None) -> str:
        seen.add(value)
        self.masked += 1
        return self.marker(value) + (NEW if fresh is not None and value not in fresh else "")

    def _secret_file(
        self, old: bytes | None, new: bytes | None
    ) -> tuple[bytes | None, bytes | None]:
        self.masked += 1
        changed = ", changed" if old is not None and new is not None and old != new else ""
        shown_old = None if old is None else f"(secret file: {len(old)} bytes)\n".encode()
        shown_new = None if new is None else f"(secret file: {len(new)} bytes{changed})\n".encode()
        return shown_old, shown_new

    def _lines(
        self, text: str, values: set[str], seen: set[str], fresh: set[str] | None = None
    ) -> str:
        """``text`` with its secrets replaced; the values met are added to ``seen``. With
        ``fresh`` (the old side's values), values not among them are marked as new."""
        finder = _finder(values)
        out = []
        for line in text.splitlines(keepends=True):
            body = line.rstrip("\r\n")
            pieces, done = [], 0
            for start, end in _spans(body, self.policy, finder):
                pieces += [body[done:start], self._mark(body[start:end], seen, fresh)]
                done = end
            pieces.append(body[done:])  # joined once: a line of many secrets stays linear
            out.append("".join(pieces) + line[len(line.rstrip("\r\n")) :])
        return "".join(out)


def _spans(line: str, policy: SecretPolicy, finder: re.Pattern[str] | None) -> list[Span]:
    """The secret values on ``line``: those of its secret keys, then any other occurrence of
    a value in ``finder``, never inside a marker already there (a diff masked before)."""
    spans = line_spans(line, policy)
    if finder is None:
        return spans
    taken = sorted([*spans, *((m.start(), m.end()) for m in MARKERS.finditer(line))])
    for found in finder.finditer(line):
        span = (found.start(), found.end())
        if not overlaps(span, taken):
            spans.append(span)
            bisect.insort(taken, span)
    return sorted(spans)


def _finder(values: set[str]) -> re.Pattern[str] | None:
    """One pattern for every value, longest first, each a whole token (``abc`` is not masked
    inside ``xabcx``)."""
    if not values:
        return None
    ordered = sorted(values, key=lambda v: (-len(v), v))
    alternatives = "|".join(re.escape(v) for v in ordered)
    return re.compile(f"(?<![{_WORD}])(?:{alternatives})(?![{_WORD}])")


def _text(data: bytes) -> str | None:
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _bytes(text: str | None) -> bytes | None:
    return None if text is None else text.encode("utf-8")


def _body(line: str) -> bool:
    """A content line of a unified diff (not a ``---``/``+++`` header or a hunk line)."""
    if line.startswith(("--- ", "+++ ", "@@")):
        return False
    return line[:1] in (" ", "+", "-")


def _added(text: str) -> list[str]:
    return [line[1:] for line in text.splitlines() if _body(line) and line[0] == "+"]


def mask_files(files: dict[str, bytes], policy: SecretPolicy | None) -> dict[str, bytes]:
    """Every file of a content view masked, numbered across the whole view."""
    masker = Masker(policy)
    return {path: masker.content(path, data) for path, data in files.items()}
