"""The rollback fast lane: the console script's entry, which runs ``rollback`` without click.

Rolling back must be quicker than the do-it-yourself ``git revert`` + ``rsync`` it replaces, and
importing click alone takes about 20 ms, a third of that budget (see docs/performance.md). So the
entry point first tries to read the command line as a plain rollback. It accepts only this exact
shape, every option spelled as ``--help`` shows it::

    lastgood [-C DIR] [--store URL] [--author NAME] rollback ENV
             [--to REF] [-m WHY] [--force] [--offline] [--json]

Anything else (``--help``, an unknown option, a missing value, any other command) goes to the
click CLI, which stays the single source of truth for help and usage errors.
``tests/test_cli_fast.py`` checks that both read every accepted line the same way.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn

from lastgood.record import Record, field

if TYPE_CHECKING:
    from lastgood.cli.app import AppContext

_GLOBAL_VALUES = {"-C": "workspace", "--workspace": "workspace", "--store": "store",
                  "--author": "author"}  # fmt: skip
_VALUES = {"--to": "to", "-m": "reason", "--message": "reason"}
_FLAGS = {"--force": "force", "--offline": "offline", "--json": "as_json"}


class RollbackLine(Record, frozen=False):
    """A rollback command line, read without click."""

    env: str = ""
    options: dict[str, str | None] = field(default_factory=dict)
    flags: dict[str, bool] = field(default_factory=dict)


def parse(argv: Sequence[str]) -> RollbackLine | None:
    """The rollback this command line asks for, or None to let click handle it."""
    line = RollbackLine(options={"workspace": None, "store": None, "author": None, "to": None,
                                 "reason": ""},
                        flags=dict.fromkeys(_FLAGS.values(), False))  # fmt: skip
    words = list(argv)
    while words and words[0] in _GLOBAL_VALUES:
        if len(words) < 2 or words[1].startswith("-"):
            return None
        option, value = words.pop(0), words.pop(0)
        line.options[_GLOBAL_VALUES[option]] = value
    if not words or words.pop(0) != "rollback":
        return None
    return line if _read_rollback(words, line) else None


def _read_rollback(words: list[str], line: RollbackLine) -> bool:
    while words:
        word = words.pop(0)
        if word in _FLAGS:
            line.flags[_FLAGS[word]] = True
        elif word in _VALUES:
            if not words or words[0].startswith("-"):
                return False
            line.options[_VALUES[word]] = words.pop(0)
        elif word.startswith("-") or line.env:
            return False
        else:
            line.env = word
    return bool(line.env)


def run_rollback(
    app: AppContext,
    env: str,
    *,
    to: str | None,
    reason: str,
    force: bool,
    offline: bool,
    as_json: bool,
) -> int:
    """The rollback command's body, shared by the fast lane and the click command."""
    from lastgood.cli import render
    from lastgood.errors import UsageError

    if offline:
        if to or force:
            raise UsageError(
                "--offline switches to the target's previous good release by itself; "
                "--to and --force need the store (drop --offline)"
            )
        from lastgood import config as config_module
        from lastgood.operations.rollback import rollback_offline

        outcome = rollback_offline(config_module.load(app.root()), env, reason=reason)
        return render.finish(outcome, as_json)
    from lastgood.operations.rollback import rollback

    project = app.project()
    if not as_json:
        project.events.subscribe(render.ProgressPrinter())
    outcome = rollback(project, env, to=to, reason=reason, force=force)
    return render.finish(outcome, as_json)


def _through_server(line: RollbackLine) -> bool:
    """``LASTGOOD_SERVER`` set: the rollback goes through the server, which click handles.

    Not with ``--store`` (an explicit store wins) nor ``--offline`` (the target directly: the
    emergency path that needs neither store nor server)."""
    from lastgood.settings import SERVER

    return bool(SERVER.read()) and not line.options["store"] and not line.flags["offline"]


def main() -> None:
    """Console entry point: the fast lane for a plain rollback, click for everything else."""
    line = parse(sys.argv[1:])
    if line is None or _through_server(line):
        from lastgood.cli.group import main as click_main

        click_main()
        return
    # A plain rollback is a short process that ends with os._exit: the cyclic garbage collector
    # has nothing to give back, and its passes over the modules being imported cost about 6 %.
    gc.disable()
    from lastgood.cli.app import AppContext, guarded

    options, flags = line.options, line.flags
    app = AppContext(options["workspace"], options["store"], options["author"])
    try:
        code = guarded(
            lambda: run_rollback(
                app,
                line.env,
                to=options["to"],
                reason=options["reason"] or "",
                force=flags["force"],
                offline=flags["offline"],
                as_json=flags["as_json"],
            )
        )
    finally:
        app.close()
    leave(code)


def leave(code: int) -> NoReturn:
    """End the process now, without the interpreter's teardown (about a tenth of a rollback's
    time): everything that matters is already done and closed above (the ledger committed,
    the store closed, the notifier drained); only the output streams are left to flush."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a reader that went away, a closed pipe
            stream.flush()
    os._exit(code)
