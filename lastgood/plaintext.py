"""Text that people read as it is: which characters can hide or fake what a terminal, a page or
a mail shows, and how to show text that holds them anyway.

Control characters (C0, DEL, C1) move the cursor, clear lines and start escape sequences;
format characters (the bidi overrides and isolates such as U+202E, zero-width joiners, the byte
order mark) reorder or hide what follows; line and paragraph separators break a line where
nothing shows it; a lone surrogate cannot even be stored as UTF-8. A name holding any of them
can pass for another on screen (``cai\\x1b[2K\\rcai`` shows as ``cai``), so names refuse them,
and listings escape them in what older stores may still hold.
"""

from __future__ import annotations

HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
"""Unicode categories of characters that are not shown as themselves: control, format,
surrogate, line separator, paragraph separator."""


def hidden_characters(text: str) -> list[str]:
    """The characters of ``text`` that a reader would not see as themselves, in order."""
    if text.isprintable():  # every hidden character is unprintable: the common case is quick
        return []
    import unicodedata

    return [char for char in text if unicodedata.category(char) in HIDDEN_CATEGORIES]


def escaped(text: str) -> str:
    """``text`` as it is when it holds no hidden character; otherwise quoted, with each of them
    (and anything else unprintable) escaped, as Python writes a string: ``'cai\\x1b[2K'``."""
    return repr(text) if hidden_characters(text) else text


def described(char: str) -> str:
    """One character for an error message: ``U+202E (RIGHT-TO-LEFT OVERRIDE)``, ``U+001B (a
    control character)`` (control characters have no Unicode name)."""
    import unicodedata

    name = unicodedata.name(char, "") or (
        "a control character" if unicodedata.category(char) == "Cc" else ""
    )
    return f"U+{ord(char):04X}" + (f" ({name})" if name else "")
