"""``type = "command"``: run a program and judge it by its exit code.

The team's own script is often the best health check (``python checks/score_sample.py``). It
gets the ``LASTGOOD_*`` variables so it knows which environment, version and files it is looking
at. It is judged by its own exit code, when it exits: a daemon it starts in the background
(``cmd &``) may keep the output pipe open, but gets only a short grace to finish printing, and
is left running. It runs in its own process group, so on timeout the whole group (the shell and
everything it started) is stopped, SIGTERM then SIGKILL: a hung check never leaves a stray
process behind. Writes nothing itself; what the command does is the team's business.

``value`` makes it measure a number from what it prints last: ``value = "last-line"`` reads the
last non-empty line as a number, any other text is a dotted path into the JSON object on that
line (``value = "scores.mean"``). ``max_drop`` / ``max_rise`` compare it with its baseline; a
command that exits as expected but prints no such number fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shlex
import signal
import subprocess
import time

from lastgood.checks.base import Check, CheckContext, CheckResult, number_at, reject_unknown_options
from lastgood.config import CheckSpec
from lastgood.errors import ConfigError
from lastgood.process_group import signal_group, signal_name, start

_OPTIONS = ("run", "exit", "cwd", "value")
LAST_LINE = "last-line"
_OUTPUT_TAIL = 300
_OUTPUT_KEPT = 64 * 1024  # bytes of output held in memory; only the tail is ever shown
_POLL = 0.05  # how often the wait looks at whether the command exited while it still prints
_OUTPUT_GRACE = 0.3  # after the command exits, how long its last output may still arrive
_TERM_GRACE = 0.2  # on timeout, how long SIGTERM gets before SIGKILL
_KILL_GRACE = 0.1  # after SIGKILL, how long the last output may still arrive


class CommandCheck(Check):
    """Run ``run`` (through the shell when it is a string) and expect exit code ``exit``."""

    type_name = "command"

    def __init__(self, spec: CheckSpec) -> None:
        """Validate the options now, so a typo stops the deploy before anything goes live."""
        super().__init__(spec)
        reject_unknown_options(spec, _OPTIONS)
        self.run = _command(spec)
        self.expected_exit = _exit_code(spec)
        cwd = spec.options.get("cwd")
        if cwd is not None and not isinstance(cwd, str):
            raise _option_error(spec, "cwd", f"= {cwd!r} must be a path", 'write cwd = "checks"')
        self.cwd = cwd
        self.value = _value_source(spec)

    @property
    def measures_value(self) -> bool:
        return self.value is not None

    @property
    def value_name(self) -> str:
        return "value" if self.value in (None, LAST_LINE) else str(self.value)

    @property
    def display(self) -> str:
        """The command as a person would type it, for details."""
        return self.run if isinstance(self.run, str) else shlex.join(self.run)

    def probe(self, context: CheckContext) -> CheckResult:
        """Run the command once, judged by its own exit; a timeout stops its whole group."""
        cwd = context.root / self.cwd if self.cwd else context.root
        try:
            process = start(self.run, cwd, {**os.environ, **context.environ()}, merge_stderr=True)
        except OSError as exc:
            reason = f"{exc.strerror}: {exc.filename}" if exc.strerror else str(exc)
            return CheckResult(self.name, False, f"cannot run `{self.display}` in {cwd}: {reason}")
        output = _Output(process)
        try:
            code = _wait(process, output, self.spec.timeout)
        finally:
            if process.returncode is None:
                _stop_group(process, output)
            output.close()
        if code is None:
            detail = f"no answer within {self.spec.timeout:g} s from `{self.display}` (killed)"
            return CheckResult(self.name, False, _with_output(detail, output.text))
        return self._judge(code, output.text)

    def _judge(self, code: int, output: bytes) -> CheckResult:
        """Pass on the expected exit code; say how it ended and what it printed last."""
        ok = code == self.expected_exit
        ended = f"was killed by {signal_name(-code)}" if code < 0 else f"exited {code}"
        expected = "" if ok else f" (expected {self.expected_exit})"
        data: dict[str, object] = {"exit": code}
        if self.value is not None:
            data["value"] = value = printed_value(output, self.value)
            if value is None and ok:
                ok, expected = False, f" but printed no {_value_wanted(self.value)} last"
        detail = _with_output(f"`{self.display}` {ended}{expected}", output)
        return CheckResult(self.name, ok, detail, data=data)


def printed_value(output: bytes, source: str) -> float | None:
    """The number on the last non-empty line of ``output`` (``source`` = "last-line"), or at
    the dotted path ``source`` in the JSON object on that line; None when there is none."""
    lines = output.decode("utf-8", errors="replace").strip().splitlines()
    last = lines[-1].strip() if lines else ""
    try:
        document = json.loads(last) if last else None
    except ValueError:
        return None
    if source == LAST_LINE:
        return number_at({"n": document}, "n")
    return number_at(document, source)


def _value_wanted(source: str) -> str:
    return "number" if source == LAST_LINE else f"JSON object with a number at {source}"


class _Output:
    """The tail of what a command prints, read from its pipe without ever blocking on it.

    Reading the raw descriptor only when the selector says it is ready lets the caller stop at
    any moment, even while a background child of the command still holds the pipe open. (A
    selector, not ``select.select``, which fails on descriptors past 1024 in a busy server.)
    """

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        self._pipe = process.stdout
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._pipe, selectors.EVENT_READ)
        self._data = bytearray()
        self.open = True

    @property
    def text(self) -> bytes:
        return bytes(self._data)

    def read(self, seconds: float) -> None:
        """Wait up to ``seconds`` for output and keep it; notes the end of the output."""
        if not self._selector.select(max(seconds, 0.0)):
            return
        chunk = os.read(self._pipe.fileno(), 65536)
        if not chunk:
            self.open = False
        self._data += chunk
        del self._data[:-_OUTPUT_KEPT]

    def drain(self, seconds: float) -> None:
        """Read until the output ends, but for ``seconds`` at most."""
        deadline = time.monotonic() + seconds
        while self.open and (left := deadline - time.monotonic()) > 0:
            self.read(left)

    def close(self) -> None:
        """Stop reading; a background child still writing gets a broken pipe, not a hang."""
        self.open = False
        self._selector.close()
        self._pipe.close()


def _wait(process: subprocess.Popen[bytes], output: _Output, timeout: float) -> int | None:
    """Collect output until the command itself exits: its exit code, or None once ``timeout``
    has passed.

    The command's exit ends the wait, not the end of its output: a daemon it started with
    ``cmd &`` may hold the pipe for ever, so the output gets only a short grace after the exit.
    """
    deadline = time.monotonic() + timeout
    while (code := process.poll()) is None:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        if output.open:
            output.read(min(left, _POLL))
        else:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(left)
    output.drain(_OUTPUT_GRACE)
    return code


def _stop_group(process: subprocess.Popen[bytes], output: _Output) -> None:
    """Stop the command and everything in its process group: SIGTERM, a moment, then SIGKILL.

    A process group's id is not reused while any member lives, so the SIGKILL after the command
    has been reaped still reaches only what the command started.
    """
    signal_group(process, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(_TERM_GRACE)
    signal_group(process, signal.SIGKILL)
    process.wait()
    output.drain(_KILL_GRACE)


def _with_output(detail: str, output: bytes) -> str:
    """Append the last lines the command printed, which usually say why it failed."""
    text = output.decode("utf-8", errors="replace").strip()
    if not text:
        return detail
    if len(text) > _OUTPUT_TAIL:
        text = "…" + text[-_OUTPUT_TAIL:]
    return f"{detail}; output: {text}"


def _command(spec: CheckSpec) -> str | list[str]:
    run = spec.options.get("run")
    if isinstance(run, str) and run.strip():
        return run
    if isinstance(run, list) and run and all(isinstance(arg, str) for arg in run):
        return list(run)
    raise _option_error(
        spec,
        "run",
        "is missing" if run is None else f"= {run!r} must be a command line or a list of args",
        'write run = "python checks/score_sample.py" or run = ["python", "checks/score.py"]',
    )


def _value_source(spec: CheckSpec) -> str | None:
    value = spec.options.get("value")
    if value is not None and (not isinstance(value, str) or not value.strip()):
        hint = f'write value = "{LAST_LINE}" or a dotted path into the JSON it prints last'
        raise _option_error(spec, "value", f"= {value!r} must be text", hint)
    return value


def _exit_code(spec: CheckSpec) -> int:
    code: object = spec.options.get("exit", 0)
    if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code <= 255:
        raise _option_error(spec, "exit", f"= {code!r} is not an exit code", "write exit = 0")
    return code


def _option_error(spec: CheckSpec, key: str, problem: str, hint: str) -> ConfigError:
    return ConfigError(f"command check {spec.name!r}: {key} {problem}", hint=hint)
