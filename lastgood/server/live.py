"""Live config: what each served environment publishes, and waking everyone when it changes.

One :class:`Feed` per served environment follows the target's ``current`` link. The payload is
built once per version (files, version number, content hash, JSON body, ETag), so a read is a
dictionary lookup and a revalidation is a string compare. Waiters (event streams, reads FastAPI
answers) wait on an :class:`asyncio.Event` that is replaced and set on every change; the fast
path's held long-polls (:mod:`lastgood.server.fastpath`) wait as :class:`Holder` entries, with
no task, and the refresh answers each directly: one switch reaches the whole fleet at once.

During a gradual rollout (see :mod:`lastgood.rollout`) the feed publishes a second version, the
one the pointer beside ``current`` names, and :meth:`Feed.pick` gives each consumer the version
of its cohort; each waiter is answered only when its own version changes.

Changes are seen three ways: the server's own deploys and rollbacks refresh the feed before they
answer (see :meth:`Feeds.publish_now`), so a read right after the answer gets the new version;
on PostgreSQL every switch recorded in the store is announced with ``NOTIFY`` and refreshes that
feed at once on every server (see :mod:`lastgood.server.switches`); and a poll every
``interval`` seconds catches whatever else switches the same target (the CLI on SQLite, an
offline rollback, and everything while the PostgreSQL listener is down).
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import functools
import json
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from lastgood.bundle import Bundle
from lastgood.errors import LastgoodError
from lastgood.record import Record
from lastgood.rollout import POINTER, Pointer, gets_new, parse_pointer
from lastgood.server.quiet import Quiet

if TYPE_CHECKING:
    from lastgood.project import Project
    from lastgood.server.switches import Listening
    from lastgood.targets.base import Release
    from lastgood.targets.served import ServedTarget

log = logging.getLogger("lastgood.server")

# How long a deploy or rollback answer waits for its feed to publish the new version. Loading a
# release takes milliseconds; this bound only matters when the release cannot be read.
PUBLISH_WAIT = 5.0


class Holder(Protocol):
    """A read waiting for its version to change without a task (see
    :mod:`lastgood.server.fastpath`)."""

    def changed(self, served: Served) -> None: ...


class Served(Record):
    """One published version of a served environment."""

    env: str
    version: int
    content_hash: str
    release: str  # the release ``current`` pointed at: its version and recorded content hash
    drifted: bool
    files: dict[str, bytes]
    body: bytes
    published_at: float

    @functools.cached_property
    def etag(self) -> str:
        """The quoted content hash: made once, as every read and every held one compares it."""
        return f'"{self.content_hash}"'

    def summary(self) -> dict[str, Any]:
        return {"env": self.env, "version": self.version, "content_hash": self.content_hash,
                "drifted": self.drifted, "published_at": self.published_at}  # fmt: skip


class Canary(Record):
    """The new version of a gradual rollout, served to the consumers its step's cohort holds."""

    pointer: Pointer
    served: Served


def encode_file(data: bytes) -> dict[str, str]:
    """A file as JSON: UTF-8 text as is, anything else base64."""
    try:
        return {"encoding": "utf-8", "content": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"encoding": "base64", "content": base64.b64encode(data).decode("ascii")}


def _read_tree(folder: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for here, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            path = Path(here) / name
            files[path.relative_to(folder).as_posix()] = path.read_bytes()
    return files


def etag_matches(header: str | None, etag: str) -> bool:
    """``If-None-Match`` against our ETag (a list, ``*`` and weak tags included)."""
    if not header:
        return False
    if header == etag:  # what every consumer sends: the tag it was given, alone
        return True
    if etag not in header and "*" not in header:  # the common miss, without splitting
        return False
    tags = [tag.strip().removeprefix("W/") for tag in header.split(",")]
    return "*" in tags or etag in tags


class Feed:
    """The live config of one served environment."""

    def __init__(self, env: str, target: ServedTarget, quiet: Quiet | None = None) -> None:
        self.env = env
        self.target = target
        self.quiet = quiet or Quiet()  # marks each fan-out (see lastgood.server.quiet)
        self.current: Served | None = None  # the stable version: ``current``
        self.canary: Canary | None = None  # the new version while a rollout is under way
        self._link: str | None = None
        self._pointer: bytes | None = None
        self._changed = asyncio.Event()
        self._refreshing = asyncio.Lock()
        self._holders: dict[Holder, tuple[str | None, str]] = {}

    def _readlink(self) -> str | None:
        try:
            return os.readlink(self.target.current)
        except OSError:
            return None

    def _load(self) -> Served | None:
        release = self.target.live()
        return None if release is None else self._load_release(release)

    def _load_release(self, release: Release) -> Served:
        folder = self.target.store.release_path(release.name)
        files = _read_tree(folder)
        actual = Bundle(files).content_hash
        payload = {
            "env": self.env,
            "version": release.version,
            "content_hash": actual,
            "drifted": actual != release.content_hash,
            "files": {path: encode_file(data) for path, data in files.items()},
        }
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        return Served(env=self.env, version=release.version, content_hash=actual,
                      release=release.name, drifted=actual != release.content_hash,
                      files=files, body=body, published_at=time.time())  # fmt: skip

    async def refresh(self) -> bool:
        """Publish the target's live release if it changed; wake every waiter. True if changed.

        One refresh at a time per feed: a poll that read the old link must not publish it over
        a newer release published by a refresh that started after it."""
        async with self._refreshing:
            return await self._refresh()

    async def _refresh(self) -> bool:
        link, pointer = self._readlink(), self._read_pointer()
        same = link == self._link and (link is None or self.current is not None)
        if same and pointer == self._pointer:
            return False
        with self.quiet.fanning_out():  # from here background store work waits (quiet.py)
            try:
                served = self.current if same else await asyncio.to_thread(self._load)
                canary = await asyncio.to_thread(self._load_canary, pointer)
            except (OSError, ValueError):
                return False  # a release half-pruned under us: the next poll reads it again
            self._link, self.current, self._pointer, self.canary = link, served, pointer, canary
            woken, self._changed = self._changed, asyncio.Event()
            woken.set()
            self._answer_holders()
        return True

    def hold(self, holder: Holder, consumer: str | None, etag: str) -> None:
        """Answer ``holder`` (a held long-poll of the fast path) once what ``consumer`` gets
        differs from ``etag``: no task waits, the refresh calls ``holder.changed``."""
        self._holders[holder] = (consumer, etag)

    def release(self, holder: Holder) -> None:
        """``holder`` no longer waits (answered, timed out, or its connection closed)."""
        self._holders.pop(holder, None)

    def _answer_holders(self) -> None:
        """Send every holder whose version changed its new one; during a rollout a step that
        leaves a consumer's version as it was leaves it holding."""
        pick, current = (self.pick if self.canary is not None else None), self.current
        for holder, (consumer, etag) in list(self._holders.items()):
            served = current if pick is None else pick(consumer)  # no rollout: one for all
            if served is not None and served.etag != etag:
                del self._holders[holder]
                holder.changed(served)

    def _read_pointer(self) -> bytes | None:
        try:
            return (self.target.path / POINTER).read_bytes()
        except OSError:
            return None

    def _load_canary(self, raw: bytes | None) -> Canary | None:
        """The rollout's new version; the files are read again only when the release changes.
        An unreadable pointer gives everyone the stable version (and is logged)."""
        if raw is None:
            return None
        try:
            pointer = parse_pointer(raw, self.target.path / POINTER)
        except LastgoodError as exc:
            log.warning("%s: everyone gets the stable version", exc.message)
            return None
        known = self.canary
        if known is not None and known.served.release == pointer.release:
            return Canary(pointer, known.served)
        try:
            release = self.target.store.release(pointer.release)
            if not self.target.store.is_retained(release):
                raise FileNotFoundError("not kept on the target")
            served = self._load_release(release)
        except (OSError, ValueError, LastgoodError) as exc:
            log.warning("cannot read %s, which the rollout on %s names (%s): everyone gets the "
                        "stable version", pointer.release, self.env, exc)  # fmt: skip
            return None
        return Canary(pointer, served)

    def pick(self, consumer: str | None) -> Served | None:
        """What ``consumer`` gets: the rollout's new version when its cohort is in, else the
        stable one (see :func:`lastgood.rollout.gets_new`)."""
        canary = self.canary
        if canary is not None and gets_new(
            self.env, consumer, canary.pointer.percent, canary.pointer.salt
        ):
            return canary.served
        return self.current

    def publishes(self, release: Release | None) -> bool:
        """Whether what this feed publishes is ``release`` (same version and recorded hash)."""
        if release is None:
            return self.current is None
        return self.current is not None and self.current.release == release.name

    async def wait_change(
        self, etag: str | None, timeout: float, consumer: str | None = None
    ) -> None:
        """Return once what ``consumer`` gets differs from ``etag``, or after ``timeout``
        seconds. Every change wakes every waiter; during a rollout a step that leaves this
        consumer's version as it was sends it back to waiting."""
        deadline = time.monotonic() + timeout
        while True:
            now = self.pick(consumer)
            left = deadline - time.monotonic()
            if (now.etag if now else None) != etag or left <= 0:
                return
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):  # no task per waiter, unlike wait_for
                    await changed.wait()


class Feeds:
    """Every served environment's feed, and the task that keeps them current."""

    def __init__(self, project: Project, interval: float, quiet: Quiet | None = None) -> None:
        self.interval = interval
        self.feeds: dict[str, Feed] = {}
        for name, env in project.config.environments.items():
            if env.target.type == "served":
                target = project.target(name)
                self.feeds[name] = Feed(name, target, quiet)  # type: ignore[arg-type]
        self.project = project
        self._poke = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.safety_interval: float | None = None  # set while a listener hears every switch

    def get(self, env: str) -> Feed | None:
        return self.feeds.get(env)

    def poke(self) -> None:
        """Look at the targets now (thread-safe): called when this server switched one."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: the server is stopping
                loop.call_soon_threadsafe(self._poke.set)

    def publish_now(self, env: str, timeout: float = PUBLISH_WAIT) -> bool:
        """Refresh ``env``'s feed and wait until it publishes what the target serves now, for at
        most ``timeout`` seconds; True once it does. Called from a request's worker thread (never
        the event loop) by a deploy or rollback before it answers, so a read that follows the
        answer gets the new version. A feed still behind at the deadline is logged, not raised:
        the switch itself is done and recorded."""
        feed, loop = self.feeds.get(env), self._loop
        if feed is None or loop is None:
            return False
        deadline = time.monotonic() + timeout
        while True:
            refreshing = _refresh_soon(feed, loop)
            if refreshing is None:
                return False  # the server is stopping
            with contextlib.suppress(TimeoutError):
                refreshing.result(max(0.0, deadline - time.monotonic()))
            if feed.publishes(_live_release(feed)):
                return True
            if time.monotonic() >= deadline:
                log.warning("the live config of %s was not published within %.0f s; answering "
                            "anyway (the next poll publishes it)", env, timeout)  # fmt: skip
                return False
            time.sleep(0.01)

    def announced(self, env: str) -> None:
        """Another process switched ``env`` (thread-safe): refresh that feed at once."""
        feed, loop = self.feeds.get(env), self._loop
        if feed is not None and loop is not None:
            _refresh_soon(feed, loop)

    def listening(self, up: bool, safety: float) -> None:
        """The store's listener connected (``up``) or lost (thread-safe). While it listens the
        poll slows to ``safety`` seconds (``interval`` if longer); either way every feed is
        looked at now, for switches announced while nobody listened."""
        self.safety_interval = max(self.interval, safety) if up else None
        self.poke()

    async def refresh_all(self) -> None:
        """Publish what every served target serves now: the server does this before it
        accepts its first request, so a read never hears "nothing is live" while something
        is (the requests a starting worker finds queued on the shared socket included)."""
        for feed in self.feeds.values():
            await feed.refresh()

    async def run(self) -> None:
        """Refresh every feed, then wait for a poke or the poll interval; forever. On a store
        that announces switches (PostgreSQL), a listener thread runs beside it."""
        self._loop = asyncio.get_running_loop()
        listening = self._listen()
        try:
            while True:
                for feed in self.feeds.values():
                    await feed.refresh()
                with contextlib.suppress(TimeoutError):
                    wait = self.safety_interval or self.interval
                    await asyncio.wait_for(self._poke.wait(), wait)
                self._poke.clear()
        finally:
            if listening is not None:
                listening.stop()

    def _listen(self) -> Listening | None:
        """Start listening for switches, when there are feeds and the store can announce."""
        from lastgood.server.switches import Listening

        listener = self.project.store.switch_listener() if self.feeds else None
        if listener is None:
            return None
        listening = Listening(self, listener)
        listening.start()
        return listening


def _refresh_soon(
    feed: Feed, loop: asyncio.AbstractEventLoop
) -> concurrent.futures.Future[bool] | None:
    """Schedule ``feed.refresh()`` on the server's loop from another thread; None when the
    loop has closed (the server is stopping)."""
    refresh = feed.refresh()
    try:
        return asyncio.run_coroutine_threadsafe(refresh, loop)
    except RuntimeError:
        refresh.close()
        return None


def _live_release(feed: Feed) -> Release | None:
    """What the feed's target serves now; None when it cannot tell (no link, or not a link)."""
    try:
        return feed.target.live()
    except (LastgoodError, OSError, ValueError):  # the poll reports a broken link, not this
        return None
