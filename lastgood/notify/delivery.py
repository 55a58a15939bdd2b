"""One delivery attempt to one apprise URL, bounded in time, with a reason when it fails.

Everything here runs on the notifier's worker thread; apprise is imported on first use, never
when lastgood starts. Secrets never leave this module: destinations are shown as apprise's
privacy URL without its query (apprise leaves custom headers such as ``+X-Token=…`` readable
there), and failure reasons are scrubbed of every part of the raw URL the mask hides.
"""

from __future__ import annotations

import logging
import re
import threading
import warnings
from typing import Any

from lastgood.record import Record

_FORMATS = {"text": "text", "markdown": "markdown", "html": "html"}
_TOKEN = re.compile(r"[^/:@?&=#+,;\s]{4,}")
_import_lock = threading.Lock()
_apprise: Any = None


class Attempt(Record):
    """What one attempt came to: sent or not, and why not (already scrubbed of secrets)."""

    ok: bool
    detail: str


def _load() -> Any:
    """Import apprise and its plugins once, quietly.

    Some apprise plugins import deprecated stdlib modules (``imghdr``), which is noise to our
    users and an error under ``-W error``. ``catch_warnings`` is process-wide, but this runs
    once, before any delivery, and only touches DeprecationWarning.
    """
    global _apprise
    with _import_lock:
        if _apprise is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                import apprise
                from apprise.plugins import N_MGR

                N_MGR.load_modules()  # type: ignore[no-untyped-call]  # apprise leaves it untyped
            # Without a handler of its own, apprise's warnings would reach Python's last-resort
            # handler (stderr) from attempts that outlive their timeout; we report them ourselves.
            logging.getLogger("apprise").addHandler(logging.NullHandler())
            _apprise = apprise
    return _apprise


def loaded() -> bool:
    """True once apprise has been imported (by the worker)."""
    return _apprise is not None


def _asset() -> Any:
    """apprise settings for our calls: no service deadline of apprise's own.

    With a deadline (apprise 2 defaults to 60 s), apprise runs the call on a shared thread
    pool, and Python joins that pool at exit: a receiver that hangs would then hold the process
    open long after ``[notify] drain`` gave up on it. Our attempt thread (a daemon) bounds the
    call instead; apprise 1.x has no such setting and no such pool.
    """
    apprise = _load()
    try:
        return apprise.AppriseAsset(service_timeout=0)
    except TypeError:
        return apprise.AppriseAsset()


def _plugin(url: str) -> Any:
    """The apprise plugin for ``url``, or None when apprise cannot read it."""
    try:
        return _load().Apprise.instantiate(url, asset=_asset(), suppress_exceptions=True) or None
    except Exception:  # an unreadable URL is reported by the caller, never raised
        return None


def mask(url: str) -> str:
    """``url`` safe to log, print and store: apprise's privacy URL without its query."""
    plugin = _plugin(url)
    if plugin is None:
        scheme = url.split("://", 1)[0] if "://" in url else "?"
        return f"{scheme}://****"
    return str(plugin.url(privacy=True)).split("?", 1)[0]


def scrub(text: str, url: str, masked: str) -> str:
    """``text`` with every piece of ``url`` that the mask hides replaced by ``****``."""
    hidden = {token for token in _TOKEN.findall(url) if token not in masked}
    for token in sorted(hidden, key=len, reverse=True):
        text = text.replace(token, "****")
    return text


def attempt(
    url: str, *, title: str, body: str, body_format: str, notify_type: str, timeout: float
) -> Attempt:
    """Send one message to ``url``; give up after ``timeout`` seconds. Never raises.

    The attempt runs on a thread of its own so that a plugin that ignores its socket timeouts
    still cannot hold the worker longer than ``timeout``; such a straggler is left to finish in
    the background (it is a daemon) and the attempt counts as failed.
    """
    masked = mask(url)
    box: dict[str, Attempt] = {}
    runner = threading.Thread(
        target=lambda: box.setdefault(
            "result", _send(url, title, body, body_format, notify_type, timeout)
        ),
        name="lastgood-notify-attempt",
        daemon=True,
    )
    runner.start()
    runner.join(timeout)
    result = box.get("result") or Attempt(False, f"no answer within {timeout:g} s")
    return Attempt(result.ok, scrub(result.detail, url, masked))


def _send(
    url: str, title: str, body: str, body_format: str, notify_type: str, timeout: float
) -> Attempt:
    try:
        apprise = _load()
        plugin = _plugin(url)
        if plugin is None:
            return Attempt(
                False,
                "apprise cannot read this URL (unknown service, or a part is missing); "
                "see the apprise URL list for the service",
            )
        plugin.socket_connect_timeout = timeout
        plugin.socket_read_timeout = timeout
        sender = apprise.Apprise(asset=plugin.asset)
        sender.add(plugin)
        with apprise.LogCapture(level=logging.INFO, fmt="%(levelname)s %(message)s") as log:
            result = sender.notify(
                body=body,
                title=title,
                body_format=apprise.NotifyFormat(_FORMATS[body_format]),
                notify_type=apprise.NotifyType(notify_type),
            )
        ok = bool(result)
        getattr(result, "close", lambda: None)()
        return Attempt(ok, _reason(log.getvalue(), ok))
    except Exception as exc:  # a plugin bug is a failed attempt, never a crashed worker
        return Attempt(False, f"{type(exc).__name__}: {exc}")


def _reason(captured: str, ok: bool) -> str:
    """The lines of apprise's log that say what went wrong (or what went right)."""
    lines = [line.strip() for line in captured.splitlines() if line.strip()]
    if ok:
        sent = [line.split(" ", 1)[-1] for line in lines if line.startswith("INFO Sent")]
        return sent[-1] if sent else "sent"
    problems = [
        line.split(" ", 1)[-1]
        for line in lines
        if line.startswith(("WARNING", "ERROR", "CRITICAL"))
    ]
    return "; ".join(dict.fromkeys(problems)) or "apprise reported a failure without a reason"
