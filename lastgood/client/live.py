"""``LiveConfig``: an application's view of one environment's live config, kept current.

Construction reads the config once (from the server, or from the disk cache when the server is
down), then a daemon thread follows every change (:mod:`lastgood.client.follower`). Readers get
the current :class:`~lastgood.client.snapshot.Snapshot`, swapped whole, so one read never mixes
two versions.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from lastgood.client.cache import ConfigCache, cache_file, default_cache_dir
from lastgood.client.channel import NOT_MODIFIED, Channel
from lastgood.client.follower import Follower
from lastgood.client.metrics import MAX_METRICS, checked_metric, header_value
from lastgood.client.notifier import ChangeCallback, Notifier
from lastgood.client.payload import recent_payloads, verify_payload
from lastgood.client.snapshot import _MISSING, Snapshot
from lastgood.errors import AuthError, LastgoodError, NotFoundError, ServerError, UsageError

if TYPE_CHECKING:
    import builtins  # LiveConfig.bytes shadows the type inside the class

log = logging.getLogger("lastgood.client")

Source = Literal["server", "cache"]
LEAVE_WITHIN = 2.0  # seconds close() spends at most telling the server this consumer stops
_EMPTY: Mapping[str, bytes] = MappingProxyType({})


def _check_identity(consumer_id: str, name: str) -> None:
    """The server accepts 1 to 200 printable characters; headers must be ASCII."""
    for label, value, minimum in (("consumer_id", consumer_id, 1), ("name", name, 0)):
        if not minimum <= len(value) <= 200 or not value.isprintable() or not value.isascii():
            raise UsageError(
                f"{label} must be {minimum} to 200 printable ASCII characters, got {value[:40]!r}"
            )


def server_urls(url: str | Sequence[str]) -> tuple[str, ...]:
    """The servers to follow, in order: a list, or one string with commas between URLs."""
    given = url.split(",") if isinstance(url, str) else list(url)
    urls = tuple(dict.fromkeys(str(one).strip().rstrip("/") for one in given if str(one).strip()))
    if not urls:
        raise UsageError(
            "LiveConfig needs the URL of a lastgood server, got none",
            hint="pass e.g. 'http://lastgood.internal:8470', or several: ['http://a', 'http://b']",
        )
    return urls


def _timings(wait: float, poll: float, timeout: float) -> tuple[float, float, float]:
    """``wait``, ``poll`` and ``timeout`` as floats; UsageError when one makes no sense."""
    if wait < 0 or wait > 60 or poll <= 0 or timeout <= 0:
        raise UsageError(
            f"need 0 <= wait <= 60, poll > 0, timeout > 0; got wait={wait}, "
            f"poll={poll}, timeout={timeout}"
        )
    return float(wait), float(poll), float(timeout)


def _cache_path(urls: Sequence[str], env: str, cache_dir: str | os.PathLike[str] | None) -> Path:
    """One cache file whichever of the servers answers, in any order they are given."""
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return cache_file(folder, ",".join(sorted(urls)), env)


def _all_failed(failures: list[ServerError]) -> ServerError:
    """One server's error as it is; with several, one error that names what each said."""
    if len(failures) == 1:
        return failures[0]
    said = "; ".join(exc.message for exc in failures)
    error = ServerError(f"none of the {len(failures)} lastgood servers answered: {said}",
                        hint=failures[0].hint)  # fmt: skip
    error.__cause__ = failures[-1]
    return error


class LiveConfig:
    """The live config of environment ``env`` on the lastgood server at ``url``.

    ``url`` may name several servers on one store (a list, or one string with commas): the
    SDK uses the first until it cannot be reached or fails (a timeout, a 5xx), then the next
    at once, and sticks with whichever answers; ``url`` is the one in use, ``urls`` all.

    ``token`` (default ``$LASTGOOD_TOKEN``) needs the viewer role on ``env``. ``cache_dir``
    (default ``$LASTGOOD_CACHE_DIR`` or ``~/.cache/lastgood``) keeps the last good version so
    the application starts when the server is down; ``cache=False`` turns it off.
    ``consumer_id`` and ``name`` identify this process in the fleet view (defaults: a random id,
    ``host:pid``). ``wait`` is the long-poll in seconds (0: plain polling every ``poll``
    seconds); ``poll`` also caps the retry backoff while the server is unreachable. ``timeout``
    bounds connecting with the TLS handshake, and an answer (beyond the long-poll's ``wait``).
    ``verify`` is the TLS context for ``https`` URLs (default: the system's CA store, loaded
    once per process). With ``require=False``, construction never fails for want of a server
    (auth errors still raise) and ``version`` stays None until a config arrives.
    ``start=False`` skips the follower thread (see :meth:`start`, :meth:`refresh`).

    Raises AuthError / ForbiddenError when the server refuses the token, and ServerError (or
    NotFoundError) when there is neither a server answer nor a cached copy.
    """

    kind: ClassVar[str] = "sdk"
    """What the fleet view calls this consumer: ``sdk``; ``agent`` for lastgood agent's."""
    shares_hub: ClassVar[bool] = True
    """Whether its held long-polls may wait in the process's hub (see lastgood.client.hub)."""

    def __init__(
        self,
        url: str | Sequence[str],
        env: str,
        *,
        token: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        cache: bool = True,
        consumer_id: str | None = None,
        name: str | None = None,
        wait: float = 30.0,
        poll: float = 5.0,
        timeout: float = 10.0,
        verify: ssl.SSLContext | None = None,
        on_change: ChangeCallback | None = None,
        require: bool = True,
        start: bool = True,
    ) -> None:
        self.urls = server_urls(url)
        self._using = 0  # index in urls of the server that answered last
        self.env = env
        self.consumer_id = consumer_id or uuid.uuid4().hex
        self.name = name if name is not None else f"{socket.gethostname()}:{os.getpid()}"
        _check_identity(self.consumer_id, self.name)
        self.wait, self.poll, self.timeout = _timings(wait, poll, timeout)
        self.cache_path: Path | None = _cache_path(self.urls, env, cache_dir) if cache else None
        self._cache = ConfigCache(self.cache_path, env) if self.cache_path else None
        self._changed = threading.Condition()
        self._snapshot: Snapshot | None = None
        self._source: Source | None = None
        self._confirmed_at = 0.0
        self._connected = False
        self._holding_since: float | None = None
        self._callbacks: tuple[ChangeCallback, ...] = (on_change,) if on_change else ()
        self._notifier: Notifier | None = None
        self._follower: Follower | None = None
        self._closed = False
        self._starting = True  # the first read saves the cache itself and calls no callback
        self._metrics: dict[str, tuple[float, int | None]] = {}  # name → (value, version)
        self._metrics_lock = threading.Lock()
        token = token if token is not None else os.environ.get("LASTGOOD_TOKEN")
        self._token, self._verify = token, verify  # for the last request, close()'s leave
        self._channels = [self._channel_to(url, self.timeout) for url in self.urls]
        try:
            self._first_read(require)
        except BaseException:
            self._close_channels()
            raise
        self._starting = False
        if start:
            self.start()

    @property
    def url(self) -> str:
        """The server in use: the one that answered last (the first until one fails)."""
        return self.urls[self._using]

    def _fetch(self, *, serving: str, etag: str | None, wait: float, metrics: str = "") -> Any:
        """One request to the server in use; when it cannot be reached or fails (ServerError:
        no connection, a timeout, a 5xx), the same request to the next server at once, each
        at most once. The one that answers is used from then on. Raises the server's error, or
        one ServerError naming every server when none answered."""
        failures: list[ServerError] = []
        first = self._using
        for step in range(len(self._channels)):
            index = (first + step) % len(self._channels)
            try:
                payload = self._channels[index].fetch(
                    serving=serving, etag=etag, wait=wait, metrics=metrics
                )
            except ServerError as exc:
                if self._closed:
                    raise
                failures.append(exc)
                continue
            if index != first:
                log.warning("%s; %s now follows %s", failures[-1].message, self.env,
                            self.urls[index])  # fmt: skip
                self._using = index
            return payload
        raise _all_failed(failures)

    # ---- reading ----------------------------------------------------------------------------

    @property
    def snapshot(self) -> Snapshot | None:
        """The current version, whole: keep it to read several files of one version."""
        return self._snapshot

    def _current(self) -> Snapshot:
        snapshot = self._snapshot
        if snapshot is None:
            raise NotFoundError(
                f"no config for {self.env!r} from {self.url} yet",
                hint="the server has not answered; see the 'lastgood.client' log",
            )
        return snapshot

    def get(self, path: str, default: Any = _MISSING) -> Any:
        """One file parsed by extension: YAML, JSON, TOML, else text (see Snapshot.get)."""
        return self._current().get(path, default)

    def text(self, path: str) -> str:
        """One file as UTF-8 text."""
        return self._current().text(path)

    def bytes(self, path: str) -> bytes:
        """One file's raw bytes."""
        return self._current().bytes(path)

    @property
    def files(self) -> Mapping[str, builtins.bytes]:
        """Path → bytes of the current version (read-only; empty before the first config)."""
        snapshot = self._snapshot
        return snapshot.files if snapshot is not None else _EMPTY

    def paths(self) -> list[str]:
        """The current version's file paths, sorted."""
        return sorted(self.files)

    @property
    def version(self) -> int | None:
        snapshot = self._snapshot
        return snapshot.version if snapshot is not None else None

    @property
    def content_hash(self) -> str | None:
        snapshot = self._snapshot
        return snapshot.content_hash if snapshot is not None else None

    @property
    def source(self) -> Source | None:
        """``"server"`` once the server confirmed what is served (its first answer, a 304
        included), ``"cache"`` before that."""
        return self._source

    @property
    def age(self) -> float | None:
        """Seconds since the server last confirmed this config is current: 0 while a long-poll
        is held open (the server answers the moment it changes), else the time since its last
        answer, or since the cached copy was fetched. None before any config."""
        if self._snapshot is None:
            return None
        holding = self._holding_since
        if holding is not None and time.monotonic() - holding < self.wait + self.timeout:
            return 0.0
        return max(0.0, time.time() - self._confirmed_at)

    @property
    def serving(self) -> str:
        """What this consumer reports in ``X-Lastgood-Serving``: ``VERSION:HASH`` or ``none``."""
        snapshot = self._snapshot
        return snapshot.serving if snapshot is not None else "none"

    # ---- metrics ----------------------------------------------------------------------------

    def report(self, name: str, value: float) -> None:
        """Report a business metric (``report("lead_score", 36.5)``) measured while serving the
        current version. Costs no request: the latest value per name goes to the server with
        this consumer's next request (at the latest when the follower's long-poll ends, within
        ``wait`` seconds; :meth:`refresh` sends it at once), where ``fleet`` checks compare the
        consumers of a new version with the rest. A value still unsent when another version
        arrives is dropped: it describes the version it was measured under. Each value is sent
        once, so one that is never reported again grows old on the server instead of looking
        fresh. Raises UsageError for a name that is not a short identifier or a value that is
        not a finite number."""
        name, number = checked_metric(name, value)
        with self._metrics_lock:
            if name not in self._metrics and len(self._metrics) >= MAX_METRICS:
                raise UsageError(
                    f"metric {name!r}: this consumer already reports {MAX_METRICS} other "
                    "metrics, the most one may",
                    hint="report fewer, broader metrics; a consumer is not a metrics pipeline",
                )
            self._metrics[name] = (number, self.version)

    def _unsent_metrics(self, serving: str) -> dict[str, tuple[float, int | None]]:
        """The values reported since the last request, measured under the version ``serving``
        names (the others are dropped: the server would take them for that version's)."""
        if not self._metrics:  # most reads: nothing reported (a racing report rides the next)
            return {}
        number = serving.partition(":")[0]
        version = int(number) if number.isdigit() else None
        with self._metrics_lock:
            for name in [n for n, (_, v) in self._metrics.items() if v != version]:
                del self._metrics[name]
            return dict(self._metrics)

    def _metrics_sent(self, sent: Mapping[str, tuple[float, int | None]]) -> None:
        """Forget the values the server took, unless one was reported again meanwhile."""
        if not sent:
            return
        with self._metrics_lock:
            for name, reading in sent.items():
                if self._metrics.get(name) is reading:
                    del self._metrics[name]

    # ---- changes ----------------------------------------------------------------------------

    def on_change(self, callback: ChangeCallback) -> ChangeCallback:
        """Call ``callback(old, new)`` (Snapshots; ``old`` may be None) after each new version
        is applied, on a background thread, in order. Usable as a decorator."""
        self._callbacks = (*self._callbacks, callback)
        return callback

    def wait_for_version(self, version: int, timeout: float = 10.0) -> Snapshot:
        """Block until ``version`` is the one served; TimeoutError after ``timeout`` seconds."""
        with self._changed:
            reached = self._changed.wait_for(lambda: self.version == version, timeout)
            if not reached:
                raise TimeoutError(
                    f"{self.env} is still on v{self.version} after {timeout:g} s, "
                    f"not v{version} (source: {self._source})"
                )
            return self._current()

    def refresh(self) -> bool:
        """Ask the server now (no long-poll); True if a new version was applied. Raises the
        server's error (ServerError when unreachable); what is served stays as it was."""
        return self._refresh(wait=0)

    def _refresh(self, *, wait: float) -> bool:
        """One request; applies a new verified version. Raises LastgoodError on failure."""
        snapshot = self._snapshot
        holding = bool(wait) and self._connected  # only the follower's long-poll holds
        if holding:
            self._holding_since = time.monotonic()
        serving = self.serving  # read once: the metrics sent must be of the version it names
        unsent = self._unsent_metrics(serving)
        metrics = header_value({name: value for name, (value, _) in unsent.items()})
        try:
            payload = self._fetch(serving=serving, wait=wait, metrics=metrics,
                                  etag=snapshot.content_hash if snapshot else None)  # fmt: skip
        except LastgoodError:
            self._connected = False
            raise
        finally:
            if holding:  # a refresh() meanwhile must not end the follower's hold
                self._holding_since = None
        self._metrics_sent(unsent)
        return self._take(payload)

    def _request(
        self, channel: Channel, wait: float
    ) -> tuple[builtins.bytes, Mapping[str, tuple[float, int | None]]]:
        """The bytes of the next read on ``channel``, and the metrics they carry (for the hub,
        which sends them itself: see lastgood.client.hub)."""
        serving, snapshot = self.serving, self._snapshot
        unsent = self._unsent_metrics(serving)
        metrics = (
            header_value({name: value for name, (value, _) in unsent.items()}) if unsent else ""
        )
        etag = snapshot.content_hash if snapshot else None
        return channel.request_for(serving=serving, etag=etag, wait=wait, metrics=metrics), unsent

    def _take(self, payload: Any) -> bool:
        """Apply what a read answered (a payload, or NOT_MODIFIED); True if a new version was
        applied. ServerError when the payload does not verify; what is served stays."""
        now = time.time()
        self._connected = True
        if payload is NOT_MODIFIED:
            self._confirmed_at, self._source = now, "server"
            return False
        try:
            new = verify_payload(payload, received_at=time.time())  # applied now
        except ServerError as exc:
            self._refused(exc)
            raise
        return self._install(new, "server", now)

    def _take_answer(self, channel: Channel, status: int, body: builtins.bytes) -> bool:
        """:meth:`_take` for an answer the hub received whole (lastgood.client.hub): a ``200``
        goes through the process's :data:`~lastgood.client.payload.recent_payloads`, so a
        version that reaches a thousand LiveConfigs of this process is verified once."""
        if status != 200:
            return self._take(channel.decode(status, body))
        now = time.time()
        self._connected = True
        try:
            new = recent_payloads.verified(body, received_at=now, decode=channel.config_of)
        except ServerError as exc:
            self._refused(exc)
            raise
        return self._install(new, "server", now)

    def _refused(self, exc: ServerError) -> None:
        log.warning("refused a config payload from %s for %s: %s", self.url, self.env, exc.message)

    def _install(self, new: Snapshot, source: Source, confirmed_at: float) -> bool:
        """Swap in ``new`` (a no-op if it is what is served) and queue the cache and callbacks."""
        with self._changed:
            old = self._snapshot
            self._confirmed_at, self._source = confirmed_at, source
            if old is not None and (old.version, old.content_hash) == (
                new.version,
                new.content_hash,
            ):
                return False
            self._snapshot = new
            self._changed.notify_all()
        if new.drifted:
            log.warning(
                "v%d on %s is drifted: the server's files differ from the version "
                "recorded; serving them as they are",
                new.version,
                self.env,
            )
        if source == "server" and not self._starting:
            self._notify(old, new)
        return True

    def _notify(self, old: Snapshot | None, new: Snapshot) -> None:
        if self._cache is None and not self._callbacks:
            return
        if self._notifier is None:
            self._notifier = Notifier(self.env, self._cache)
            self._notifier.start()
        self._notifier.submit(old, new, self._callbacks)

    # ---- life cycle -------------------------------------------------------------------------

    def _first_read(self, require: bool) -> None:
        try:
            self._refresh(wait=0)
        except AuthError:
            raise
        except LastgoodError as exc:
            self._start_without_server(exc, require)
            return
        if self._cache is not None and self._snapshot is not None:
            self._cache.save(self._snapshot)  # now, so a restart right after has it

    def _start_without_server(self, exc: LastgoodError, require: bool) -> None:
        cached = self._cache.load() if self._cache is not None else None
        if cached is not None:
            self._install(cached, "cache", cached.received_at)
            log.warning(
                "%s; serving v%d from the cache %s, fetched %.0f s ago",
                exc.message,
                cached.version,
                self.cache_path,
                self.age,
            )
            return
        where = f"the cache {self.cache_path} is empty" if self._cache else "the cache is off"
        if not require:
            log.warning("%s, and %s: no config until the server answers", exc.message, where)
            return
        raise type(exc)(
            f"{exc.message}, and {where}, so there is no config to serve",
            hint=f"{exc.hint or 'start the server or fix the URL'}; or pass require=False "
            "to start without config and take it when the server answers",
        ) from exc

    def start(self) -> None:
        """Start following changes in a daemon thread (done by the constructor by default)."""
        if self._closed:
            raise UsageError("this LiveConfig is closed")
        if self._follower is None:
            self._follower = Follower(self)
            self._follower.start()

    def close(self) -> None:
        """Stop following (at once, even mid long-poll), finish pending cache writes and
        callbacks, and close the connection. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        following = self._connected  # the server heard from it: it counts it as a consumer
        if self._follower is not None:
            self._follower.stop()
        if self._notifier is not None:
            self._notifier.stop()
        self._close_channels()
        if following:
            self._leave()

    def _channel_to(self, url: str, timeout: float) -> Channel:
        """Requests to ``url`` as this consumer (its id, name, kind, token and TLS trust)."""
        return Channel(url, self.env, token=self._token, consumer_id=self.consumer_id,
                       name=self.name, timeout=timeout, verify=self._verify,
                       kind=self.kind)  # fmt: skip

    def _leave(self) -> None:
        """Tell the server in use that this consumer stops, so the fleet drops it at once
        instead of counting it as not following for 90 s. After the follower stopped (no
        long-poll of its own revives it), on a fresh connection (close() closed the others),
        within :data:`LEAVE_WITHIN` seconds; a server that cannot be told drops it after 90 s
        of silence all the same."""
        channel = self._channel_to(self.url, min(self.timeout, LEAVE_WITHIN))
        try:
            channel.leave()
        except LastgoodError as exc:
            log.debug("could not tell %s that %s stops: %s", self.url, self.name, exc.message)
        finally:
            channel.close()

    def _close_channels(self) -> None:
        """Break every exchange in flight (from any thread) and close the connections."""
        for channel in self._channels:
            channel.close()

    def __enter__(self) -> LiveConfig:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        shown = "nothing" if self.version is None else f"v{self.version} from {self._source}"
        return f"<LiveConfig {self.env} at {self.url}: {shown}>"
