"""Commands started in a process group of their own, so that stopping one stops everything it
started: the ``command`` checks (:mod:`lastgood.checks.command`) and the ``command`` target
(:mod:`lastgood.targets._process`) both run people's shell lines, which fork freely, under a
timeout."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path


def start(
    run: str | list[str], cwd: Path, env: Mapping[str, str], *, merge_stderr: bool
) -> subprocess.Popen[bytes]:
    """Start ``run`` (a string through ``/bin/sh``, a list as argv) in a new session, stdin
    empty, its output piped (stderr into stdout when ``merge_stderr``). OSError when it cannot
    start."""
    return subprocess.Popen(
        run,
        shell=isinstance(run, str),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
        start_new_session=True,
    )


def signal_group(process: subprocess.Popen[bytes], number: signal.Signals) -> None:
    """Send ``number`` to the command's process group (just the command if that is refused).
    A group's id is not reused while any member lives, so a signal after the command was
    reaped still reaches only what it started."""
    try:
        os.killpg(process.pid, number)
    except ProcessLookupError:
        pass
    except PermissionError:
        if process.returncode is None:
            process.send_signal(number)


def signal_name(number: int) -> str:
    """``SIGKILL`` for 9; ``signal 77`` for a number with no name."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
