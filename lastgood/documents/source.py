"""Reading a document's raw content: a file, a folder, or a URL.

A folder is read as a whole, every file below it in path order, so that adding, removing or
renaming a file changes the document (the caller puts each file under a ``=== path ===``
header). ``.git`` and ``.lastgood`` are skipped: they change on their own and are not content.
A URL is fetched with one GET under the document's timeout, following redirects; any status
other than 2xx is an error, never a "change" to an error page.

Every failure is a :class:`DocumentError` naming the document, its source and why. Reads only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from lastgood import __version__
from lastgood.config import DocumentSpec
from lastgood.errors import DocumentError

if TYPE_CHECKING:
    import httpx

SKIPPED_FOLDERS = frozenset({".git", ".lastgood"})

Files = list[tuple[str, bytes]]
"""A folder's files as ``(relative POSIX path, bytes)``, sorted by path."""


def describe(spec: DocumentSpec) -> str:
    """``document 'pricing sheet' (shared/pricing.csv)``: how messages name a document."""
    if spec.name == spec.source:
        return f"document {spec.name!r}"
    return f"document {spec.name!r} ({spec.source})"


def local_path(spec: DocumentSpec, root: Path) -> Path:
    """The file or folder of a ``path`` document; relative paths start at the workspace."""
    path = Path(spec.path or "").expanduser()
    return path if path.is_absolute() else root / path


def read(spec: DocumentSpec, root: Path) -> bytes | Files:
    """The raw content of ``spec``: bytes for a file or URL, the files of a folder."""
    if spec.url is not None:
        return fetch(spec)
    path = local_path(spec, root)
    try:
        if path.is_dir():
            return read_folder(path)
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise DocumentError(
            f"{describe(spec)}: no such file or folder {str(path)!r}",
            hint="create it, or fix path in its [[watch.document]] entry in lastgood.toml",
        ) from exc
    except OSError as exc:
        raise DocumentError(
            f"{describe(spec)}: cannot read {str(path)!r}: {exc.strerror or exc}",
            hint="check that the user running lastgood may read it",
        ) from exc


def read_folder(folder: Path) -> Files:
    """Every file below ``folder`` in path order; a file that vanishes while we walk is
    simply absent (it was being removed)."""
    files: Files = []
    for directory, subfolders, names in os.walk(folder, onerror=_raise):
        subfolders[:] = [name for name in subfolders if name not in SKIPPED_FOLDERS]
        for name in names:
            path = Path(directory) / name
            try:
                files.append((path.relative_to(folder).as_posix(), path.read_bytes()))
            except FileNotFoundError:
                continue
            except IsADirectoryError:
                continue  # a symlink to a folder: not followed, like os.walk itself
    files.sort()
    return files


def _raise(error: OSError) -> None:
    raise error


def fetch(spec: DocumentSpec) -> bytes:
    """GET the URL under the document's timeout; the body, transcoded to UTF-8 when the
    server declares another charset and the mode reads text."""
    import httpx

    from lastgood.tls import verifying

    url = spec.url or ""
    headers = {"User-Agent": f"lastgood/{__version__} (document tracking)"}
    try:
        trust_env = not is_loopback(url)
        with httpx.Client(
            timeout=spec.timeout, follow_redirects=True, trust_env=trust_env,
            verify=verifying(trust_env),
        ) as client:  # fmt: skip
            response = client.get(url, headers=headers)
    except httpx.TimeoutException as exc:
        raise DocumentError(
            f"{describe(spec)}: no answer within {spec.timeout:g} s",
            hint="check the server, or raise timeout in its [[watch.document]] entry",
        ) from exc
    except httpx.HTTPError as exc:
        raise DocumentError(
            f"{describe(spec)}: the request failed: {type(exc).__name__}: {exc}",
            hint=f"check the address and the network: curl -sSI {url}",
        ) from exc
    if not response.is_success:
        raise DocumentError(
            f"{describe(spec)}: GET answered {response.status_code} "
            f"{response.reason_phrase}".rstrip(),
            hint="a page that answers an error is never stored as a new version; "
            f"check it with curl -sSI {url}",
        )
    return _body(response, spec.normalize)


def _body(response: httpx.Response, mode: str) -> bytes:
    charset = (response.charset_encoding or "utf-8").lower().replace("_", "-")
    if mode == "bytes" or charset in ("utf-8", "utf8"):
        return response.content
    try:
        return response.content.decode(charset).encode("utf-8")
    except (LookupError, UnicodeDecodeError):
        return response.content


def is_loopback(url: str) -> bool:
    """Loopback URLs never go through HTTP_PROXY: a proxy cannot reach our 127.0.0.1 (the
    same rule as the http check)."""
    import ipaddress
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
