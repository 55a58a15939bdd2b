"""What an ``http`` target sends, and the one comparable form of what it sent and what it reads.

A tool rarely hands back the bytes it was given: it re-serialises JSON, wraps the configuration
in metadata (``{"id": 7, "updatedAt": …, "config": {…}}``), returns a file's text as a string
or a parsed object. So neither side is compared as bytes. Both are reduced to the same
*comparable form*, and its canonical JSON (sorted keys, no spaces, UTF-8) is hashed:

- a file's bytes: UTF-8 text that parses as JSON is that JSON value; other UTF-8 text is the
  string; anything else is ``{"base64": "…"}``;
- what the tool returns for a file: a string is read as the text of the file (so the rules
  above apply to it), an ``{"encoding", "content"}`` object (the bundle's own form) is decoded
  to bytes first, any other JSON value is taken as is.

The bundle body is lastgood's own wire format for files (the server's ``files`` field):
``{path: {"encoding": "utf-8" | "base64", "content": "…"}}``. Writes nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from typing import Any

_MISSING = object()


def encode_file(data: bytes) -> dict[str, str]:
    """A file as the bundle carries it: UTF-8 text as is, anything else base64."""
    try:
        return {"encoding": "utf-8", "content": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"encoding": "base64", "content": base64.b64encode(data).decode("ascii")}


def bundle_body(files: Mapping[str, bytes]) -> bytes:
    """The whole version as one JSON document, paths sorted."""
    body = {path: encode_file(files[path]) for path in sorted(files)}
    return json.dumps(body, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"


def of_bytes(data: bytes) -> Any:
    """The comparable form of a file's bytes (see the module docstring)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}
    return of_text(text)


def of_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def as_bytes(value: Any) -> bytes | None:
    """The bytes a returned value stands for when it is text or an encoded file, else None."""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict) and set(value) == {"encoding", "content"}:
        content = value["content"]
        if value["encoding"] == "utf-8" and isinstance(content, str):
            return content.encode("utf-8")
        if value["encoding"] == "base64" and isinstance(content, str):
            try:
                return base64.b64decode(content, validate=True)
            except (binascii.Error, ValueError):
                return None
    return None


def of_value(value: Any) -> Any:
    """The comparable form of what the tool returned for one file."""
    data = as_bytes(value)
    return of_bytes(data) if data is not None else value


def canonical_hash(form: Any) -> str:
    """sha256 of the canonical JSON of a comparable form."""
    text = json.dumps(form, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_bytes(value: Any) -> bytes:
    """What a fetch writes for a value the tool returned: its bytes when it is text or an
    encoded file, else the value as indented JSON."""
    data = as_bytes(value)
    if data is not None:
        return data
    return json.dumps(value, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"


def resolve(document: Any, pointer: str) -> Any:
    """The part of ``document`` that ``pointer`` (RFC 6901) names; KeyError when absent."""
    if pointer == "":
        return document
    current = document
    for raw in pointer[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(current, dict) and token in current:
            current = current[token]
        elif isinstance(current, list) and token.isdigit() and int(token) < len(current):
            current = current[int(token)]
        else:
            raise KeyError(pointer)
    return current
