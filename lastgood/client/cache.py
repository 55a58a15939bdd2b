"""The last good config on disk, so an application starts when the server is down.

One JSON file per server and environment (``<cache_dir>/<env>-<8 hex of the URL>.json``) in the
wire format plus ``version``, ``content_hash`` and ``fetched_at``. It is written atomically
(a temporary file in the same folder, fsync, ``os.replace``, fsync of the folder), so a crash
leaves the old file or the new one, never half of one. It is verified by hash when loaded: a
damaged or hand-edited file is ignored with a warning, never served.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from lastgood.client.payload import encode_files, verify_payload
from lastgood.client.snapshot import Snapshot
from lastgood.errors import ServerError

log = logging.getLogger("lastgood.client")

FORMAT = 1


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
        """The cached snapshot, or None when there is none or it does not verify (logged)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cannot read the config cache %s: %s; ignoring it", self.path, exc)
            return None
        try:
            data: Any = json.loads(raw)
            fetched_at = float(data["fetched_at"])
            if data.get("env") != self.env:
                raise ServerError(f"it holds {str(data.get('env'))[:40]!r}, not {self.env!r}")
            return verify_payload(data, received_at=fetched_at)
        except (ValueError, TypeError, KeyError, ServerError) as exc:
            message = exc.message if isinstance(exc, ServerError) else repr(exc)
            log.warning("config cache %s is damaged and ignored: %s", self.path, message)
            return None

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
