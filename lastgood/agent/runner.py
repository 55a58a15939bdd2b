"""The agent process: follow the server, place each version, check the host, report, until
SIGTERM or SIGINT.

Threads: the SDK's follower places new versions (:mod:`lastgood.agent.follow`); the main thread
runs the host checks after each switch and every ``check_every`` seconds, notices a switch made
by hand (an offline rollback), and reports what changed at once. One lock keeps a placement and
the main thread's read-back of the target apart.

When the server cannot be reached at start, the agent keeps serving the release its target
holds and the follower retries with backoff; nothing on the host changes until a version
arrives.
"""

from __future__ import annotations

import contextlib
import logging
import re
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from lastgood.agent.follow import HostConfig, nothing_live_yet
from lastgood.agent.guard import AgentLock, check_target, lock_folders
from lastgood.agent.health import HostHealth, build_host_checks, check_host_values
from lastgood.agent.hostspace import AgentPlan
from lastgood.agent.placing import REFUSED_VERDICTS, place
from lastgood.client import Snapshot
from lastgood.errors import LastgoodError, TargetError, UsageError
from lastgood.targets._fs import option_keep
from lastgood.targets.base import Release
from lastgood.targets.registry import open_target

log = logging.getLogger("lastgood.agent")


def serving_of(release: Release | None) -> str:
    """The ``X-Lastgood-Serving`` value of what a target serves."""
    return "none" if release is None else f"{release.version}:{release.content_hash}"


def _shown(release: Release | None) -> str:
    return "nothing" if release is None else f"v{release.version}"


class Agent:
    """One environment followed onto one target of this host."""

    def __init__(
        self,
        plan: AgentPlan,
        *,
        token: str | None,
        retry_max: float = 5.0,
        wait: float = 30.0,
        take_withdrawn: bool = False,
    ) -> None:
        """``take_withdrawn``: put every served version live, even one an offline rollback
        withdrew on this host (once a person knows the server's version is good again)."""
        self.plan = plan
        self.take_withdrawn = take_withdrawn
        settings = plan.config.environment(plan.env)
        self.target = open_target(plan.env, settings.target, plan.root)
        self.keep = option_keep(settings.target.options)
        self.checks = build_host_checks(plan.config, plan.env)
        self.token, self.retry_max, self.wait = token, retry_max, wait
        self.stopping = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._reported: tuple[str, HostHealth] | None = None
        self._proven: str | None = None  # the release last marked good here
        self._held_back: str | None = None  # the withdrawn release last said to be held back
        self._claim = AgentLock()
        self.follower: HostConfig | None = None

    def run(self) -> int:
        """Follow until stopped; 0 on a clean stop. Raises AuthError when the token is refused
        and TargetError / ConfigError when the target cannot be read at start."""
        restore = self._handle_signals()
        try:
            self._start()
            while not self.stopping.is_set():
                self._wake.wait(self.plan.check_every)
                self._wake.clear()
                if not self.stopping.is_set():
                    self._check_logged()
        finally:
            self.close()  # before the handlers go back: a second SIGTERM still only stops
            self._claim.release()
            restore()
        return 0

    def _check_logged(self) -> None:
        """:meth:`check`, logging an error's message (the traceback only with -v) and going
        on: the next round may succeed, and what is live stays live."""
        try:
            self.check()
        except LastgoodError as exc:
            log.error("could not check %s: %s", self.target.describe(), exc)
        except Exception as exc:
            log.error("could not check %s: %s", self.target.describe(), _said(exc))
            log.debug("the error in full", exc_info=True)

    def _start(self) -> None:
        check_target(self.target, self.plan.target_where)
        self._claim.take(lock_folders(self.target, self.plan.root))
        note = self.target.recover()
        if note:
            log.info("%s", note)
        live = self.target.live()
        plan = self.plan
        log.info(
            "following %s at %s as %s; %s serves %s",
            plan.env, plan.server, plan.name, self.target.describe(), _shown(live),
        )  # fmt: skip
        if len(plan.servers) > 1:
            log.info("failing over between %d server URLs", len(plan.servers))
        self.follower = HostConfig(
            plan.servers, plan.env, placer=self._place, serving=serving_of(live), token=self.token,
            consumer_id=plan.consumer_id, name=plan.name, wait=self.wait, poll=self.retry_max,
            require=False,
        )  # fmt: skip
        self._say_first_answer(live)
        self.check()

    def _say_first_answer(self, live: Release | None) -> None:
        """Say why nothing arrived at start: the server is away, or has nothing live yet."""
        assert self.follower is not None
        failure = self.follower.first_failure
        if failure is None:
            return
        keeps = f"{self.target.describe()} keeps serving {_shown(live)}"
        if nothing_live_yet(failure):
            log.warning("%s answered: nothing is live on %s yet; %s until a deploy there",
                        self.plan.server, self.plan.env, keeps)  # fmt: skip
            return
        log.warning("%s: %s; retrying every %g s at most", failure.message, keeps,
                    self.retry_max)  # fmt: skip

    def _place(self, snapshot: Snapshot) -> str:
        """Put ``snapshot`` live (the follower's thread); returns what the target serves."""
        with self._lock:
            try:
                placement = place(self.target, snapshot.version, snapshot.content_hash,
                                  snapshot.files, self.keep,
                                  honour_verdicts=not self.take_withdrawn)  # fmt: skip
            except Exception as exc:
                raise self._failed_placement(snapshot, exc) from exc
        if placement.action == "refused":
            self._held_back = Release(snapshot.version, snapshot.content_hash).name
        level = {"refused": logging.WARNING, "kept": logging.DEBUG}.get(placement.action)
        log.log(level or logging.INFO, "%s", placement.message)
        if placement.changed:
            self._wake.set()  # run the host checks on it now
        return serving_of(placement.live)

    def _failed_placement(self, snapshot: Snapshot, exc: Exception) -> LastgoodError:
        """Log why ``snapshot`` could not go live (the message; the traceback only with -v),
        tell the fleet, and give the follower a LastgoodError to retry on."""
        said = str(exc) if isinstance(exc, LastgoodError) else _said(exc)
        if self.plan.target_where == "--target":  # the user typed it: name what they typed
            said = re.sub(r"target\.path( in lastgood\.toml)?", "--target", said)
        message = f"could not put v{snapshot.version} live on {self.target.describe()}: {said}"
        log.error("%s", message)
        if not isinstance(exc, LastgoodError):
            log.debug("the error in full", exc_info=exc)
        if self.follower is not None:  # the fleet sees why this host lags while it retries
            self.follower.set_health("failing", message)
            self._reported = None
        return exc if isinstance(exc, LastgoodError) else TargetError(message)

    def check(self) -> None:
        """Read back what the target serves, run the host checks, report what changed."""
        with self._lock:
            live = self.target.live()
            if self.follower is not None:
                self._notice_switch_by_hand(live)
                self.follower.set_serving(serving_of(live))
        health, values = check_host_values(self.checks, self.plan.config, self.plan.env,
                                           self.target, live)  # fmt: skip
        if self.follower is not None:  # carried by the next request, as an SDK's are
            for name, value in values.items():
                with contextlib.suppress(UsageError):  # past the most metrics one may report
                    self.follower.report(name, value)
        if live is not None and not health.failing:
            self._prove(live)
        state = (serving_of(live), health)
        if state == self._reported or self.follower is None:
            return
        if self._reported is None or self._reported[1] != health:
            level = logging.WARNING if health.failing else logging.INFO
            log.log(level, "%s on %s", health.describe(), _shown(live))
        self._reported = state
        self.follower.set_health(health.health, health.detail)
        with contextlib.suppress(LastgoodError):  # the server is away: later requests carry it
            self.follower.refresh()  # report now, not at the end of the long-poll

    def _notice_switch_by_hand(self, live: Release | None) -> None:
        """Say so when the target serves something this agent did not put there (an offline
        rollback on the host): it is reported as it is, and not undone."""
        assert self.follower is not None
        if self.follower.serving == serving_of(live):
            return
        received = self.follower.snapshot
        served = f"; the server serves v{received.version}" if received is not None else ""
        log.warning(
            "%s now serves %s, switched outside this agent (an offline rollback?): reporting "
            "it as it is%s", self.target.describe(), _shown(live), served,
        )  # fmt: skip
        if received is not None:
            self._say_held_back(Release(received.version, received.content_hash), live)

    def _say_held_back(self, received: Release, live: Release | None) -> None:
        """Once per release: the server's version is withdrawn here, so it stays off."""
        if self.take_withdrawn or received.name == self._held_back or received == live:
            return
        verdict = self.target.verdict(received)
        if verdict in REFUSED_VERDICTS:
            self._held_back = received.name
            log.warning("v%d is %s on this host (an offline rollback took it back): %s keeps "
                        "%s, until the server serves another version", received.version,
                        verdict, self.target.describe(), _shown(live))  # fmt: skip

    def _prove(self, live: Release) -> None:
        """Mark ``live`` good on the target once its host checks passed (or none are set), so
        an offline rollback on this host may go back to it; never over a withdrawn verdict."""
        if live.name == self._proven:
            return
        with self._lock:
            if self.target.verdict(live) not in REFUSED_VERDICTS:
                self.target.record_verdict(live, "good")
        self._proven = live.name

    def stop(self) -> None:
        self.stopping.set()
        self._wake.set()

    def close(self) -> None:
        """Stop following, tell the server this agent left (so the fleet does not count it as
        not following for 90 s), and say what stays live."""
        if self.follower is not None:
            follower, self.follower = self.follower, None
            follower.close()  # which tells the server this agent left
            with self._lock:
                live = self.target.live()
            log.info("stopped; %s stays live on %s", _shown(live), self.target.describe())

    def _handle_signals(self) -> Callable[[], None]:
        """SIGTERM and SIGINT stop the agent after the step in progress (a switch under way
        always finishes); a second one while it stops changes nothing (it stays blocked until
        the process exits). Only the main thread may install handlers."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        signals = (signal.SIGTERM, signal.SIGINT)
        previous = {sig: signal.getsignal(sig) for sig in signals}

        def stop(_signum: int, _frame: Any) -> None:
            # later signals are held (blocked, never delivered) until the process exits: the
            # stop under way finishes, whatever handler Python puts back meanwhile
            signal.pthread_sigmask(signal.SIG_BLOCK, signals)
            self.stop()

        for sig in signals:
            signal.signal(sig, stop)

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore


def _said(exc: BaseException) -> str:
    """An unexpected error in one sentence: an OSError's reason and file, never a traceback."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return f"{type(exc).__name__}: {exc}"


def configure_logging(verbose: bool = False) -> None:
    """The agent's and the SDK's messages on stderr, one line each (journald adds the time)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Lines(tracebacks=verbose))
    for name in ("lastgood.agent", "lastgood.client"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG if verbose else logging.INFO)
        logger.propagate = False


class _Lines(logging.Formatter):
    """``v7 live on …`` for information, ``warning: …`` and ``error: …`` otherwise. A record
    carrying an exception (the SDK's "unexpected error") gets the exception's message; the
    traceback only with ``tracebacks`` (``-v``)."""

    def __init__(self, tracebacks: bool = False) -> None:
        super().__init__()
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info and not self.tracebacks:
            error = record.exc_info[1]
            record = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None})
            if error is not None:
                record.msg, record.args = f"{record.getMessage()}: {_said(error)}", None
        text = super().format(record)
        if record.levelno >= logging.ERROR:
            return f"error: {text}"
        return f"warning: {text}" if record.levelno >= logging.WARNING else text
