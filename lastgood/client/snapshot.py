"""One complete version of an environment's config, as the SDK holds it.

A :class:`Snapshot` never changes after it is built: the follower swaps in a new one, so a
reader that took ``live.snapshot`` sees every file of one version, never a mix of two.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

from lastgood.errors import NotFoundError, ValidationError

_MISSING: Any = object()


def parse_file(path: str, data: bytes) -> Any:
    """Parse a file by its extension: YAML, JSON, TOML; anything else is UTF-8 text.

    Raises :class:`~lastgood.errors.ValidationError` naming the file when it does not parse
    (the server validated it at deploy time, so this means a wrong extension or a drifted file).
    """
    suffix = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    try:
        if suffix in ("yaml", "yml"):
            import yaml  # imported here: an application reading only JSON never pays for it

            return yaml.safe_load(data)
        if suffix == "json":
            return json.loads(data)
        if suffix == "toml":
            import tomllib

            return tomllib.loads(data.decode("utf-8"))
        return data.decode("utf-8")
    except (ValueError, UnicodeDecodeError, ImportError) as exc:
        raise ValidationError(f"{path} does not parse as its extension says: {exc}") from exc
    except Exception as exc:  # yaml.YAMLError does not derive from ValueError
        raise ValidationError(f"{path} does not parse as YAML: {exc}") from exc


class Snapshot:
    """An immutable version: number, content hash and every file's bytes.

    ``received_at`` is the wall-clock time (``time.time()``) this process got the version, from
    the server or from the cache file's record of when it was fetched.
    """

    __slots__ = ("_lock", "_parsed", "content_hash", "drifted", "files", "received_at", "version")

    version: int
    content_hash: str
    drifted: bool
    files: Mapping[str, bytes]
    received_at: float
    _parsed: dict[str, Any]  # each file parsed once, under _lock; readers get copies
    _lock: threading.Lock

    def __init__(
        self,
        version: int,
        content_hash: str,
        files: Mapping[str, bytes],
        *,
        received_at: float,
        drifted: bool = False,
    ) -> None:
        set_ = object.__setattr__
        set_(self, "version", version)
        set_(self, "content_hash", content_hash)
        set_(self, "files", MappingProxyType(dict(files)))
        set_(self, "received_at", received_at)
        set_(self, "drifted", drifted)
        set_(self, "_parsed", {})
        set_(self, "_lock", threading.Lock())

    def received(self, at: float) -> Snapshot:
        """The same version as received at ``at`` by another LiveConfig of this process: the
        files are shared, since neither copy ever changes them."""
        twin: Snapshot = object.__new__(Snapshot)
        set_ = object.__setattr__
        set_(twin, "version", self.version)
        set_(twin, "content_hash", self.content_hash)
        set_(twin, "files", self.files)
        set_(twin, "drifted", self.drifted)
        set_(twin, "received_at", at)
        set_(twin, "_parsed", {})
        set_(twin, "_lock", threading.Lock())
        return twin

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"a Snapshot is immutable: cannot set {name!r}")

    def __repr__(self) -> str:
        return f"Snapshot(v{self.version}, {self.content_hash[:12]}, {len(self.files)} files)"

    @property
    def serving(self) -> str:
        """The ``X-Lastgood-Serving`` value: ``VERSION:HASH``."""
        return f"{self.version}:{self.content_hash}"

    def paths(self) -> list[str]:
        """Every file's path, sorted."""
        return sorted(self.files)

    def __iter__(self) -> Iterator[str]:
        return iter(self.paths())

    def __contains__(self, path: object) -> bool:
        return path in self.files

    def bytes(self, path: str) -> bytes:
        """One file's raw bytes; :class:`~lastgood.errors.NotFoundError` if absent."""
        try:
            return self.files[path]
        except KeyError:
            shown = ", ".join(self.paths()[:10]) or "no files"
            raise NotFoundError(
                f"v{self.version} has no file {path!r} (it has: {shown})",
                hint="paths are relative to the version's root, with '/' separators",
            ) from None

    def text(self, path: str) -> str:
        """One file decoded as UTF-8."""
        return self.bytes(path).decode("utf-8")

    def get(self, path: str, default: Any = _MISSING) -> Any:
        """One file parsed by extension (``.yaml``/``.yml``, ``.json``, ``.toml``, else text).

        Each file is parsed once per snapshot; callers get a deep copy, so changing the result
        never changes what another thread reads. ``default`` is returned for a missing file.
        """
        if default is not _MISSING and path not in self.files:
            return default
        data = self.bytes(path)
        with self._lock:
            if path not in self._parsed:
                self._parsed[path] = parse_file(path, data)
            value = self._parsed[path]
        return value if isinstance(value, str | int | float | None) else copy.deepcopy(value)
