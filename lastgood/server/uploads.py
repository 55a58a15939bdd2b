"""Uploaded files become a bundle under the same rules as the workspace folder.

``lastgood --server URL deploy ENV`` uploads the local folder (read with the local
``[versioning]`` rules); the server checks every path and file again against its own rules,
because a client is never trusted to have done so. ``deploy --commit`` uploads what a commit
holds with the commit's author and author date, checked here too.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from lastgood.bundle import Bundle
from lastgood.errors import RawDataError, UsageError
from lastgood.plaintext import described, hidden_characters
from lastgood.project import Project
from lastgood.workspace import check_relative_path, refuse_data


def bundle_of(project: Project, files: Mapping[str, Mapping[str, str]]) -> Bundle:
    """The bundle for uploaded ``path → {encoding, content}``; refuses unsafe paths and data."""
    if not files:
        raise UsageError("an upload needs at least one file")
    decoded: dict[str, bytes] = {}
    for path, item in files.items():
        if not path or path.endswith("/") or "\\" in path or "\0" in path:
            raise RawDataError(f"path {path[:200]!r} is not a file path",
                               hint="send paths like scoring/thresholds.yaml")  # fmt: skip
        relative = check_relative_path(path)
        if relative != path or relative.startswith("./") or "/./" in path:
            raise RawDataError(f"path {path[:200]!r} is not in normal form",
                               hint=f"send it as {relative!r}")  # fmt: skip
        if item.get("encoding") == "base64":
            try:
                data = base64.b64decode(item.get("content", ""), validate=True)
            except (binascii.Error, ValueError):
                raise UsageError(f"{path}: content is not valid base64") from None
        else:
            try:
                data = item.get("content", "").encode("utf-8")
            except UnicodeEncodeError:
                raise UsageError(
                    f"{path}: content is not valid UTF-8 text",
                    hint='send binary files with "encoding": "base64"',
                ) from None
        refuse_data(relative, len(data), project.config.versioning)
        decoded[relative] = data
    return Bundle(decoded)


def commit_author(from_commit: bool, author: str | None, date: float | None) -> str | None:
    """The uploaded commit's author, to record as the version's (None: the token's name).

    Only a commit has an author and an author date: sent with a folder, they would make a
    snapshot look like someone else's work, so they are refused rather than ignored. An author
    is shown as it is wherever versions are listed (``log``, ``blame``, the web page), so one
    holding a character that moves the cursor, breaks the line or reorders the text (a bidi
    override) is refused. Other invisible format characters are kept, unlike in token names:
    this is a person's name as git holds it, and some scripts need them (the zero-width
    non-joiner of Persian)."""
    if not from_commit and (author is not None or date is not None):
        raise UsageError(
            "git_author and git_author_date describe the commit of a from_commit upload; this "
            "upload is a folder",
            hint="send them with from_commit: true and git_commit, or leave them out (the "
            "version is then recorded under the token's name)",
        )
    hidden = [char for char in hidden_characters(author or "") if _breaks_display(char)]
    if hidden:
        raise UsageError(
            f"git_author holds {described(hidden[0])}, which would reach every listing of "
            "versions as it is",
            hint="send the author as git shows it: 'Name <email>', printable characters only",
        )
    return author


def _breaks_display(char: str) -> bool:
    """A character that is not text: a control, a surrogate, a line or paragraph separator, or
    a bidi embedding, override or isolate (U+202A-U+202E, U+2066-U+2069)."""
    import unicodedata

    code = ord(char)
    return (
        unicodedata.category(char) != "Cf" or 0x202A <= code <= 0x202E or 0x2066 <= code <= 0x2069
    )
