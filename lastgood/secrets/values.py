"""Where the secrets are in one file's text. Pure functions; nothing is read or written.

Two ways, because configuration comes in every shape:

- **On a line** (:func:`line_spans`): the value of a ``key: value``, ``key = value``,
  ``KEY=value`` or ``"key": "value"`` pair whose key is secret, wherever it stands on the line
  (a JSON one-liner, a query string), and the password in a ``scheme://user:PASSWORD@host``
  URL. This works for YAML, JSON, TOML, ``.env``, INI and plain text alike, even a file that
  does not parse.
- **In the structure** (:func:`anywhere_values`): a JSON, YAML, TOML, ``.env`` or INI file is
  parsed, and every value under a secret key (lists and nested tables included, multi-line
  strings line by line) and every value a ``[secrets] values`` selector picks is masked wherever
  it appears in the file, since the same token pasted elsewhere is the same secret.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterator
from typing import Any

from lastgood.secrets.policy import SecretPolicy, Step

MARK = "••••••"
_KEY = r"""(?P<key>"[^"\n]+"|'[^'\n]+'|[A-Za-z0-9_.\-]+)"""
LINE = re.compile(r"^\s*(?:-\s+)?(?:export\s+)?" + _KEY + r"\s*[:=]\s*(?P<value>.*?)\s*$")
INLINE = re.compile(
    r"""(?P<key>"[^"\n]+"|'[^'\n]+'|(?<![A-Za-z0-9_\-])[A-Za-z0-9_\-]{1,200})\s*[:=]\s*"""
)
"""A key and its separator anywhere on a line; the value is read after it (:data:`VALUE`)
only when the key is secret, and not taken by the search, so a pair inside a value
(``"url": "https://h/?api_key=…"``) is found too. A bare key starts only where a word starts
and is at most 200 characters, and no value is read for a key that is not secret: either would
make a long line cost a scan from every position, quadratic in its length (a 32 KB line took a
minute)."""
VALUE = re.compile(
    r"""(?P<value>"(?:[^"\\\n]|\\.)*"|'[^'\n]*'|[^\s,;&}\])"'/#{\[][^\s,;&}\])"']*)"""
)
URL_PASSWORD = re.compile(
    r"(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]{0,40}://[^/\s:@]+:(?P<value>[^/\s@]+)@"
)
NOT_SECRET = frozenset(
    {"", "|", ">", "|-", ">-", "|+", ">+", "{", "[", "{}", "[]", "null", "~", "none", "nil",
     "true", "false", "yes", "no", "on", "off", '""', "''"}
)  # fmt: skip
"""Values that hold no secret: empty, booleans, nulls, the start of a block or a table."""
_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")

Span = tuple[int, int]


def line_spans(line: str, policy: SecretPolicy) -> list[Span]:
    """Where the secret values on ``line`` are: ``(start, end)`` offsets, in order."""
    spans: list[Span] = []
    whole = LINE.match(line)
    rest = 0
    if whole is not None:
        if policy.is_secret_key(whole["key"]):
            span = value_span(line, whole.start("value"), whole.end("value"))
            if span is not None:
                spans.append(span)
        rest = whole.start("value")
    for pair in INLINE.finditer(line, rest):
        if spans and pair.start() < spans[-1][1]:
            continue  # inside a secret value already found: masked with it
        if not policy.is_secret_key(pair["key"]):
            continue
        value = VALUE.match(line, pair.end())
        if value is None:
            continue
        span = value_span(line, value.start("value"), value.end("value"))
        if span is not None and not overlaps(span, spans):
            spans.append(span)
    for found in URL_PASSWORD.finditer(line):
        span = (found.start("value"), found.end("value"))
        if line.startswith((MARK, "(secret file:"), span[0]) or overlaps(span, spans):
            continue
        bisect.insort(spans, span)
    return spans


def value_span(line: str, start: int, end: int) -> Span | None:
    """The secret part of the value written at ``line[start:end]``: inside its quotes, or up
    to a comment or a trailing comma. None when it holds nothing secret (or is masked)."""
    text = line[start:end]
    if text[:1] in ("'", '"'):
        close = _closing_quote(text)
        inner = (start + 1, start + close) if close else (start + 1, end)
    else:
        comment = re.search(r"\s[#;]", text)
        stop = start + comment.start() if comment else end
        while stop > start and line[stop - 1] in " \t,":
            stop -= 1
        inner = (start, stop)
    value = line[inner[0] : inner[1]]
    if value.lower() in NOT_SECRET or is_marker(value):
        return None
    return inner


def is_marker(text: str) -> bool:
    """Whether ``text`` starts with a mask marker (so nothing is masked twice)."""
    return text.startswith(MARK) or text.startswith("(secret file:")


def anywhere_values(path: str, text: str, policy: SecretPolicy) -> set[str]:
    """Secret values of the file at ``path`` to mask wherever they appear in it: those of
    secret keys found on lines (when long enough to be worth it), those under secret keys in
    the parsed structure, and those the selectors for ``path`` pick."""
    found = {v for v in _line_values(text, policy) if _distinctive(v)}
    documents = parse_documents(path, text)
    for document in documents:
        found |= {v for v in _under_secret_keys(document, policy) if _distinctive(v)}
    for selector in policy.selectors_for(path):
        for document in documents:
            for node in select(document, selector.steps):
                found |= set(scalar_texts(node))
    return {value for value in found if value.lower() not in NOT_SECRET}


def _line_values(text: str, policy: SecretPolicy) -> Iterator[str]:
    for line in text.splitlines():
        for start, end in line_spans(line, policy):
            yield line[start:end]


def _distinctive(value: str) -> bool:
    """Long enough, and not a bare number, to mask wherever it appears without hiding
    unrelated settings (``token_ttl: 60`` must not hide every 60 in the file)."""
    return len(value) >= 4 and not _NUMBER.match(value)


def parse_documents(path: str, text: str) -> list[Any]:
    """``text`` parsed by the format its name says; [] when it is not one or does not parse."""
    name = path.lower()
    try:
        if name.endswith(".json"):
            return [json.loads(text)]
        if name.endswith((".yaml", ".yml")):
            return _yaml_documents(text)
        if name.endswith(".toml"):
            import tomllib

            return [tomllib.loads(text)]
        if name.endswith(".env") or name.rsplit("/", 1)[-1].startswith(".env"):
            return [_pairs(text)]
        if name.endswith((".ini", ".cfg", ".conf", ".properties")):
            return [_sections(text)]
    except Exception:  # a file that does not parse is still masked line by line
        return []
    return []


def _yaml_documents(text: str) -> list[Any]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return list(yaml.load_all(text, Loader=loader))  # a safe loader: no Python objects


def _pairs(text: str) -> dict[str, str]:
    """``KEY=value`` lines (``export`` and quotes allowed), as an ``.env`` file holds them."""
    pairs: dict[str, str] = {}
    for line in text.splitlines():
        found = LINE.match(line)
        if found is not None and not line.lstrip().startswith("#"):
            span = value_span(line, found.start("value"), found.end("value"))
            pairs[found["key"].strip("\"'")] = line[span[0] : span[1]] if span else ""
    return pairs


def _sections(text: str) -> dict[str, Any]:
    """An INI-like file: keys before any ``[section]`` at the top, the others per section."""
    tree: dict[str, Any] = {}
    current = tree
    for line in text.splitlines():
        header = re.match(r"^\s*\[([^\]]+)\]\s*$", line)
        if header:
            current = tree.setdefault(header[1].strip(), {})
            continue
        found = LINE.match(line)
        if found is not None and not line.lstrip().startswith(("#", ";")):
            span = value_span(line, found.start("value"), found.end("value"))
            current[found["key"].strip("\"'")] = line[span[0] : span[1]] if span else ""
    return tree


def _under_secret_keys(node: Any, policy: SecretPolicy) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if policy.is_secret_key(str(key)):
                yield from scalar_texts(value)
            else:
                yield from _under_secret_keys(value, policy)
    elif isinstance(node, list):
        for item in node:
            yield from _under_secret_keys(item, policy)


def scalar_texts(node: Any) -> Iterator[str]:
    """Every scalar under ``node`` as it may be written in the file: strings line by line
    (and JSON-escaped when that differs), whole numbers as digits. Booleans, nulls, floats
    and dates are left: they are no credential and print differently from how they are written."""
    if isinstance(node, dict):
        for value in node.values():
            yield from scalar_texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from scalar_texts(item)
    elif isinstance(node, str):
        for line in node.splitlines():
            if line.strip():
                yield line.strip()
        escaped = json.dumps(node, ensure_ascii=False)[1:-1]
        if escaped != node:
            yield escaped
    elif isinstance(node, int) and not isinstance(node, bool):
        yield str(node)


def select(node: Any, steps: tuple[Step, ...]) -> Iterator[Any]:
    """The nodes ``steps`` lead to from ``node`` (a selector's path after ``$``)."""
    if not steps:
        yield node
        return
    step, rest = steps[0], steps[1:]
    if step.kind == "descend":
        yield from _descend(node, step.name, rest)
        return
    for child in _children(node, step):
        yield from select(child, rest)


def _children(node: Any, step: Step) -> Iterator[Any]:
    if isinstance(node, dict):
        if step.kind in ("any", "every"):
            yield from node.values()
        elif step.kind == "key" and step.name in node:
            yield node[step.name]
    elif isinstance(node, list):
        if step.kind in ("any", "every"):
            yield from node
        elif step.kind == "index" and int(step.name) < len(node):
            yield node[int(step.name)]


def _descend(node: Any, name: str, rest: tuple[Step, ...]) -> Iterator[Any]:
    """``..name``: ``name`` at any depth below ``node`` (``..*``: every node below it)."""
    children = list(node.items()) if isinstance(node, dict) else []
    if isinstance(node, list):
        children = [(None, item) for item in node]
    for key, child in children:
        if name == "*" or key == name:
            yield from select(child, rest)
        yield from _descend(child, name, rest)


def _closing_quote(text: str) -> int:
    """Index of the quote that closes ``text[0]``, or 0 when it is not closed on this line."""
    quote, index = text[0], 1
    while index < len(text):
        if text[index] == "\\" and quote == '"':
            index += 2
            continue
        if text[index] == quote:
            return index
        index += 1
    return 0


def overlaps(span: Span, spans: list[Span]) -> bool:
    """Whether ``span`` overlaps one of ``spans`` (sorted, not overlapping each other): its
    neighbours are the only candidates, so a line with thousands of values stays linear."""
    at = bisect.bisect_left(spans, span)
    return any(span[0] < end and start < span[1] for start, end in spans[max(at - 1, 0) : at + 1])
