"""The wire format of live config, and the check that what arrived is what was published.

The server answers ``{"env", "version", "content_hash", "drifted", "files": {path:
{"encoding": "utf-8" | "base64", "content"}}}``. The SDK recomputes the content hash from the
files exactly as the store does (:mod:`lastgood.bundle`) and refuses a payload that does not
match: a truncating proxy, a bad cache or tampering must never become the config an application
serves. The on-disk cache uses the same format, so it is verified the same way.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from typing import Any

from lastgood.bundle import file_hash, manifest_hash
from lastgood.client.snapshot import Snapshot
from lastgood.errors import ServerError


def decode_files(files: Any) -> dict[str, bytes]:
    """``{path: {"encoding", "content"}}`` → ``{path: bytes}``; ServerError if malformed."""
    if not isinstance(files, Mapping):
        raise ServerError("the config payload has no 'files' object")
    decoded: dict[str, bytes] = {}
    for path, entry in files.items():
        if not isinstance(path, str) or not isinstance(entry, Mapping):
            raise ServerError(f"the config payload has a malformed file entry {str(path)[:80]!r}")
        encoding, content = entry.get("encoding"), entry.get("content")
        if not isinstance(content, str):
            raise ServerError(f"file {path!r} in the config payload has no text content")
        if encoding == "utf-8":
            decoded[path] = content.encode("utf-8")
        elif encoding == "base64":
            try:
                decoded[path] = base64.b64decode(content, validate=True)
            except binascii.Error as exc:
                raise ServerError(f"file {path!r} is not valid base64: {exc}") from exc
        else:
            raise ServerError(f"file {path!r} has an unknown encoding {str(encoding)[:20]!r}")
    return decoded


def encode_files(files: Mapping[str, bytes]) -> dict[str, dict[str, str]]:
    """The inverse of :func:`decode_files` (as the server encodes: UTF-8 text as is)."""
    encoded: dict[str, dict[str, str]] = {}
    for path, data in files.items():
        try:
            encoded[path] = {"encoding": "utf-8", "content": data.decode("utf-8")}
        except UnicodeDecodeError:
            encoded[path] = {"encoding": "base64", "content": base64.b64encode(data).decode()}
    return encoded


def content_hash_of(files: Mapping[str, bytes]) -> str:
    """The content hash of a set of files, as :class:`lastgood.bundle.Bundle` computes it."""
    return manifest_hash((path, file_hash(data)) for path, data in files.items())


def verify_payload(payload: Any, *, received_at: float) -> Snapshot:
    """Check a decoded config payload and return it as a :class:`Snapshot`; writes nothing.

    Raises :class:`~lastgood.errors.ServerError` when the files do not hash to
    ``content_hash`` or the payload is malformed (not a subclass of its own: every error class
    lives in :mod:`lastgood.errors` and is documented in docs/errors.md).
    """
    if not isinstance(payload, Mapping):
        raise ServerError("the config payload is not a JSON object")
    version, claimed = payload.get("version"), payload.get("content_hash")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ServerError(f"the config payload has no valid version: {str(version)[:40]!r}")
    if not isinstance(claimed, str):
        raise ServerError("the config payload has no content_hash")
    files = decode_files(payload.get("files"))
    actual = content_hash_of(files)
    if actual != claimed:
        raise ServerError(
            f"v{version}'s files hash to {actual[:12]}, not the {claimed[:12]} the payload "
            "claims: refused, the previous config stays in use",
            hint="something between the server and this process changed the files "
            "(a proxy, a truncated response, a damaged cache file)",
        )
    return Snapshot(
        version,
        claimed,
        files,
        received_at=received_at,
        drifted=bool(payload.get("drifted", False)),
    )


class RecentPayloads:
    """The last few config answers this process verified, by their exact bytes.

    When a switch reaches a process that holds many LiveConfigs of one environment (one per
    tenant, say, or a benchmark's thousand), each of them receives the same bytes: the server
    writes one prepared answer per version. Decoding the JSON and hashing every file again for
    each LiveConfig was most of what applying a version cost (about half of the hub's CPU per
    consumer). Equal bytes decode and verify to the same files, so a hit is as safe as checking
    again; a miss is checked in full. Only verified answers are kept, and only a few (a rollout
    serves two versions at once), so memory stays what the LiveConfigs hold anyway.

    Safe to use from several threads: the entries are replaced whole, never changed in place;
    two threads missing together both verify, which costs time, never correctness.
    """

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._entries: tuple[tuple[bytes, Snapshot], ...] = ()

    def verified(
        self, body: bytes, *, received_at: float, decode: Callable[[bytes], Any]
    ) -> Snapshot:
        """``body`` (a ``200`` answer's bytes) as a verified Snapshot received at
        ``received_at``; ``decode`` turns bytes it has not seen into the payload (raising the
        channel's own error when they are not JSON). ServerError when it does not verify."""
        for known, snapshot in self._entries:
            if known == body:
                return snapshot.received(received_at)
        snapshot = verify_payload(decode(body), received_at=received_at)
        self._entries = ((body, snapshot), *self._entries[: self.size - 1])
        return snapshot


recent_payloads = RecentPayloads()  # the process's own (lastgood.client.hub applies through it)
