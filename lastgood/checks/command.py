"""``type = "command"``: run a program and judge it by its exit code.

The team's own script is often the best health check (``python checks/score_sample.py``). It
gets the ``LASTGOOD_*`` variables so it knows which environment, version and files it is looking
at. It runs in its own process group, so on timeout the whole group (the shell and everything it
started) is killed: a hung check never leaves a stray process behind. Writes nothing itself;
what the command does is the team's business.
"""

from __future__ import annotations

import difflib
import os
import shlex
import signal
import subprocess
from pathlib import Path

from lastgood.checks.base import Check, CheckContext, CheckResult
from lastgood.config import CheckSpec
from lastgood.errors import ConfigError

_OPTIONS = ("run", "exit", "cwd")
_OUTPUT_TAIL = 300
_REAP_GRACE = 0.3


class CommandCheck(Check):
    """Run ``run`` (through the shell when it is a string) and expect exit code ``exit``."""

    type_name = "command"

    def __init__(self, spec: CheckSpec) -> None:
        """Validate the options now, so a typo stops the deploy before anything goes live."""
        super().__init__(spec)
        _reject_unknown(spec)
        self.run = _command(spec)
        self.expected_exit = _exit_code(spec)
        cwd = spec.options.get("cwd")
        if cwd is not None and not isinstance(cwd, str):
            raise _option_error(spec, "cwd", f"= {cwd!r} must be a path", 'write cwd = "checks"')
        self.cwd = cwd

    @property
    def display(self) -> str:
        """The command as a person would type it, for details."""
        return self.run if isinstance(self.run, str) else shlex.join(self.run)

    def probe(self, context: CheckContext) -> CheckResult:
        """Run the command once under the timeout; a hang kills its whole process group."""
        cwd = context.root / self.cwd if self.cwd else context.root
        try:
            process = _start(self.run, cwd, {**os.environ, **context.environ()})
        except OSError as exc:
            reason = f"{exc.strerror}: {exc.filename}" if exc.strerror else str(exc)
            return CheckResult(self.name, False, f"cannot run `{self.display}` in {cwd}: {reason}")
        try:
            output, _ = process.communicate(timeout=self.spec.timeout)
        except subprocess.TimeoutExpired:
            output = _kill(process)
            detail = f"no answer within {self.spec.timeout:g} s from `{self.display}` (killed)"
            return CheckResult(self.name, False, _with_output(detail, output))
        finally:
            if process.poll() is None:
                _kill(process)
        return self._judge(process.returncode, output)

    def _judge(self, code: int, output: bytes) -> CheckResult:
        """Pass on the expected exit code; say how it ended and what it printed last."""
        ok = code == self.expected_exit
        ended = f"was killed by {_signal_name(-code)}" if code < 0 else f"exited {code}"
        expected = "" if ok else f" (expected {self.expected_exit})"
        detail = _with_output(f"`{self.display}` {ended}{expected}", output)
        return CheckResult(self.name, ok, detail, data={"exit": code})


def _start(run: str | list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start the command in a new session, so it and its children share one killable group."""
    return subprocess.Popen(
        run,
        shell=isinstance(run, str),
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _kill(process: subprocess.Popen[bytes]) -> bytes:
    """Kill the process group and collect what it printed, without waiting on stray holders."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()
    try:
        output, _ = process.communicate(timeout=_REAP_GRACE)
    except subprocess.TimeoutExpired:
        # A grandchild that left our group still holds the pipe; stop reading, don't wait.
        if process.stdout is not None:
            process.stdout.close()
        process.wait()
        return b""
    return output


def _with_output(detail: str, output: bytes) -> str:
    """Append the last lines the command printed, which usually say why it failed."""
    text = output.decode("utf-8", errors="replace").strip()
    if not text:
        return detail
    if len(text) > _OUTPUT_TAIL:
        text = "…" + text[-_OUTPUT_TAIL:]
    return f"{detail}; output: {text}"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


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


def _exit_code(spec: CheckSpec) -> int:
    code = spec.options.get("exit", 0)
    if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code <= 255:
        raise _option_error(spec, "exit", f"= {code!r} is not an exit code", "write exit = 0")
    return code


def _reject_unknown(spec: CheckSpec) -> None:
    """Refuse keys this check does not know, suggesting the closest one."""
    for key in spec.options:
        if key not in _OPTIONS:
            close = difflib.get_close_matches(key, _OPTIONS, n=1)
            hint = f"did you mean {close[0]}?" if close else f"known keys: {', '.join(_OPTIONS)}"
            raise _option_error(spec, key, "is not an option of command checks", hint)


def _option_error(spec: CheckSpec, key: str, problem: str, hint: str) -> ConfigError:
    return ConfigError(f"command check {spec.name!r}: {key} {problem}", hint=hint)
