"""The last good config on disk, so an application starts when the server is down.

One JSON file per server and environment (``<cache_dir>/<env>-<8 hex of the URL>.json``) in the
wire format plus ``format``, ``fetched_at`` and ``digest``. It is written atomically (a
temporary file in the same folder, fsync, ``os.replace``, fsync of the folder), so a crash
leaves the old file or the new one, never half of one.

It is verified as a whole when loaded: ``digest`` is the SHA-256 of every other field in a
canonical JSON form, so an edited version number, content hash, drift flag or fetch time fails
it just as an edited file does, and the files must still hash to the content hash. A file that
fails either check is ignored with a warning naming it, never served. Caches written by
lastgood 0.1 (``format`` 1, whose hash covered only the files) are ignored the same way, with a
message saying so: nothing in them can be trusted, and the next server answer replaces them.
This detects damage and hand edits; it is not a signature (whoever can write the file can
recompute the digest), so the cache folder must be writable only by the application.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lastgood.client.payload import encode_files, verify_payload
from lastgood.client.snapshot import Snapshot
from lastgood.errors import ServerError

log = logging.getLogger("lastgood.client")

FORMAT = 2  # 1: lastgood 0.1, whose hash covered the files only (ignored when loaded)


def document_digest(body: Mapping[str, Any]) -> str:
    """``sha256:HEX`` of every field of a cache document except ``digest`` itself, as canonical
    JSON (sorted keys, no spaces, ASCII), so that the digest is the same after a reload."""
    rest = {key: value for key, value in body.items() if key != "digest"}
    canonical = json.dumps(rest, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "sha256:" + hashlib.sha256(canonical.encode("ascii")).hexdigest()


class CacheRefused(Exception):
    """Why a cache file cannot be served (internal: :meth:`ConfigCache.load` logs it)."""


def default_cache_dir() -> Path:
    """``$LASTGOOD_CACHE_DIR``, else ``$XDG_CACHE_HOME/lastgood``, else ``~/.cache/lastgood``."""
    explicit = os.environ.get("LASTGOOD_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lastgood"


def cache_file(cache_dir: Path, url: str, env: str) -> Path:
    """Where the cache of ``env`` on the server at ``url`` lives (two servers never collide)."""
    tag = hashlib.sha256(url.encode("utf-8")).hexdigest()[:8]
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", env)[:100]
    return cache_dir / f"{safe}-{tag}.json"


class ConfigCache:
    """Load and save one environment's last good snapshot."""

    def __init__(self, path: Path, env: str) -> None:
        self.path = path
        self.env = env

    def load(self) -> Snapshot | None:
        """The cached snapshot, or None when there is none or it does not verify as a whole
        (logged as a warning that names the file). Reads only."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cannot read the config cache %s: %s; ignoring it", self.path, exc)
            return None
        try:
            return self._verify(raw)
        except CacheRefused as exc:
            log.warning("config cache %s is ignored: %s", self.path, exc)
        except (ValueError, TypeError, KeyError, ServerError) as exc:
            message = exc.message if isinstance(exc, ServerError) else repr(exc)
            log.warning("config cache %s is damaged and ignored: %s", self.path, message)
        return None

    def _verify(self, raw: bytes) -> Snapshot:
        """Check the document's format, digest and environment, then its files' hash."""
        data: Any = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("it is not a JSON object")
        written = data.get("format")
        if written != FORMAT:
            raise CacheRefused(_format_problem(written))
        if data.get("digest") != document_digest(data):
            raise ServerError(
                "its digest does not match its content (edited by hand, or corrupted); "
                "it is never served, and the next answer from the server replaces it"
            )
        if data.get("env") != self.env:
            raise ServerError(f"it holds {str(data.get('env'))[:40]!r}, not {self.env!r}")
        return verify_payload(data, received_at=float(data["fetched_at"]))

    def save(self, snapshot: Snapshot) -> None:
        """Replace the cache with ``snapshot`` atomically; failures are logged, never raised
        (a full disk must not stop an application from following its config)."""
        body = {
            "format": FORMAT,
            "env": self.env,
            "version": snapshot.version,
            "content_hash": snapshot.content_hash,
            "drifted": snapshot.drifted,
            "fetched_at": snapshot.received_at,
            "files": encode_files(snapshot.files),
        }
        body["digest"] = document_digest(body)
        try:
            self._write(json.dumps(body, separators=(",", ":")).encode("utf-8"))
        except OSError as exc:
            log.warning("cannot write the config cache %s: %s", self.path, exc)

    def _write(self, data: bytes) -> None:
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            dir=folder, prefix=f".{self.path.name}.", suffix=".tmp"
        )
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _format_problem(written: object) -> str:
    """Why a cache document of another format is not read, for the warning."""
    if written is None or written == 1:
        return (
            "it was written by lastgood 0.1 (cache format 1), whose check did not cover the "
            "version number; it is not served, and the next answer from the server replaces it"
        )
    return (
        f"it has cache format {str(written)[:20]!r}, which this lastgood (format {FORMAT}) "
        "does not read; it is not served, and the next answer from the server replaces it"
    )
