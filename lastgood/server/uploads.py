"""Uploaded files become a bundle under the same rules as the workspace folder.

``lastgood --server URL deploy ENV`` uploads the local folder (read with the local
``[versioning]`` rules); the server checks every path and file again against its own rules,
because a client is never trusted to have done so.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from lastgood.bundle import Bundle
from lastgood.errors import RawDataError, UsageError
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
