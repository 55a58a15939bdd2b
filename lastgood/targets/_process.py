"""Run one of a target's commands: under a timeout, in its own process group, secrets masked.

A ``command`` target (and any target that shells out) needs the same three promises for every
command it runs: it never hangs lastgood (a timeout stops the command *and everything it
started*, SIGTERM then SIGKILL to the whole process group), a failure reads as a sentence that
names the command, how it ended and the last lines it printed, and a secret handed to the
command through the environment never reaches an error message, the ledger or a log: the
values of variables whose names look secret are replaced with ``***`` in every output shown.

Writes nothing itself; what the command does is the team's business.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path

from lastgood.errors import TargetError, TargetTimeoutError
from lastgood.process_group import signal_group, signal_name, start
from lastgood.record import Record

Command = str | list[str]
_TERM_GRACE = 0.5  # on timeout, how long SIGTERM gets before SIGKILL
_AFTER_KILL = 2.0  # after SIGKILL, how long the pipes may still take to close
TAIL_LINES = 6
TAIL_CHARS = 600
SECRET_NAME = re.compile(
    r"TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIAL|AUTH(?!OR)|API_?KEY|_KEY$"
)
_MIN_SECRET = 4  # shorter values would mask ordinary words


class Ran(Record):
    """A command that ran to its end: its exit code and what it printed (masked)."""

    code: int
    stdout: str
    stderr: str


def display(command: Command) -> str:
    """The command as a person would type it (as configured: variables stay unexpanded)."""
    return command if isinstance(command, str) else shlex.join(command)


def secret_values(environ: Mapping[str, str]) -> list[str]:
    """Values of variables whose names look like they hold a secret, longest first."""
    found = {
        value
        for name, value in environ.items()
        if SECRET_NAME.search(name.upper()) and len(value) >= _MIN_SECRET
    }
    return sorted(found, key=len, reverse=True)


def mask(text: str, secrets: list[str]) -> str:
    """``text`` with every secret value replaced by ``***``."""
    for value in secrets:
        text = text.replace(value, "***")
    return text


def tail(text: str) -> str:
    """The last few lines of ``text``, at most :data:`TAIL_CHARS` characters."""
    lines = [line for line in text.strip().splitlines() if line.strip()][-TAIL_LINES:]
    shown = " | ".join(line.strip() for line in lines)
    return shown if len(shown) <= TAIL_CHARS else "…" + shown[-TAIL_CHARS:]


def run(
    command: Command,
    *,
    what: str,
    cwd: Path,
    extra_env: Mapping[str, str],
    timeout: float,
) -> Ran:
    """Run ``command`` (a string through ``/bin/sh``, a list as argv) to its end.

    ``what`` names it in errors (``the activate command of production``). Raises TargetError when
    it cannot start or runs past ``timeout`` (its whole process group is then stopped); returns
    the exit code and masked output otherwise, whatever the code.
    """
    environ = {**os.environ, **extra_env}
    secrets = secret_values(environ)
    try:
        process = start(command, cwd, environ, merge_stderr=False)
    except OSError as exc:
        reason = f"{exc.strerror}: {exc.filename}" if exc.strerror else str(exc)
        raise TargetError(
            f"{what} `{display(command)}` could not start in {cwd}: {reason}",
            hint="fix the command in lastgood.toml (is the program installed and on PATH?)",
        ) from exc
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        out, err = _stop_group(process)
        shown = tail(mask(_text(err) + "\n" + _text(out), secrets))
        raise TargetTimeoutError(
            f"{what} `{display(command)}` gave no answer within {timeout:g} s and was stopped "
            "with its whole process group" + (f"; its last output: {shown}" if shown else ""),
            hint="see why the tool is slow, or raise target.timeout in lastgood.toml",
        ) from None
    return Ran(process.returncode, mask(_text(out), secrets), mask(_text(err), secrets))


def failure(what: str, command: Command, ran: Ran) -> str:
    """A sentence saying how a command that ran to its end failed, with its last lines."""
    ended = f"was killed by {signal_name(-ran.code)}" if ran.code < 0 else f"exited {ran.code}"
    parts = [f"{what} `{display(command)}` {ended}"]
    if shown := tail(ran.stderr):
        parts.append(f"stderr: {shown}")
    if shown := tail(ran.stdout):
        parts.append(f"stdout: {shown}")
    return "; ".join(parts)


def _stop_group(process: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    """SIGTERM the command's process group, a moment, then SIGKILL; what it printed."""
    signal_group(process, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(_TERM_GRACE)
    signal_group(process, signal.SIGKILL)
    try:
        return process.communicate(timeout=_AFTER_KILL)
    except subprocess.TimeoutExpired:  # a child that left the group still holds a pipe
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
        process.wait()
        return b"", b""


def _text(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", errors="replace")
