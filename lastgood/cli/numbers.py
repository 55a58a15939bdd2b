"""Whole numbers on the command line, written in ASCII digits.

Python's ``int()`` reads every Unicode decimal digit: ``٣`` (an Arabic-Indic three) and the
full-width three both give 3. A number that shows as another on the screen must not name a
request, a token or a count, so the options and arguments that take one use :class:`Digits`
instead of :class:`click.IntRange`.
"""

from __future__ import annotations

from typing import Any

import click

from lastgood.refs import LARGEST_VERSION


class Digits(click.IntRange):
    """An :class:`click.IntRange` that takes ASCII digits only (a sign allowed where the range
    lets it through); ``what`` names the number in the error (``a request number``)."""

    def __init__(
        self, min: int | None = None, max: int | None = None, *, what: str = "a whole number"
    ) -> None:
        super().__init__(min, max)
        self.what = what

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str):
            text = value.strip().removeprefix("-").removeprefix("+")
            if not (text.isascii() and text.isdigit()):
                self.fail(f"{value!r} is not {self.what}: write it in digits 0-9", param, ctx)
        return super().convert(value, param, ctx)


REQUEST_NUMBER = Digits(1, LARGEST_VERSION, what="a request number")
"""A change request's number (``request show N``, ``approve N`` …)."""
