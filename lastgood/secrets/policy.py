"""``[secrets]``: which keys, files and values are secret, read and checked with the config.

Imported by :mod:`lastgood.config` only when ``lastgood.toml`` has a ``[secrets]`` table, and by
the masking code when something is shown; it needs nothing but :mod:`fnmatch` and :mod:`re`, so
reading a config that has the table stays cheap (a rollback reads it too). Reads only.

Key names are compared case-insensitively and without ``_``, ``-``, ``.`` and spaces, so the
pattern ``*api_key*`` also matches ``API_KEY``, ``apiKey`` and ``api-key``.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any

from lastgood.errors import ConfigError
from lastgood.record import Record

DEFAULT_KEYS = ("*api_key*", "*token*", "*password*", "*secret*")
DEFAULT_ALLOW = ("*max_tokens*",)
"""An LLM setting's token *count* is configuration people must see change, not a credential."""

KEYS = {"keys", "allow", "replace_defaults", "paths", "values"}
_NOT_IN_NAMES = str.maketrans("", "", "_-. \t")
_STEP = r"""\.\.(?P<descend>[A-Za-z0-9_\-]+|\*)      # ..name or ..*: at any depth
      | \.(?P<key>[A-Za-z0-9_\-]+)               # .name
      | \.(?P<any>\*)                            # .*: every key
      | \[(?P<index>\d+)\]                       # [0]
      | \[(?P<every>\*)\]                        # [*]: every item
      | \[(?P<quote>["'])(?P<quoted>.+?)(?P=quote)\]   # ['a.b']: a key with any characters
    """
"""One step of a selector's path; compiled only when a selector is read (a rollback reads the
config too, and compiling costs it a millisecond)."""
SELECTOR_EXAMPLE = '"crm.yaml:$.auth.key", "*.json:$.*.token" or "services.toml:$..password"'


class Step(Record):
    """One step of a selector: ``kind`` is key, any, index, every or descend."""

    kind: str
    name: str = ""


class Selector(Record):
    """``crm.yaml:$.auth.key``: the values at ``steps`` inside files matching ``files``."""

    text: str
    files: str
    steps: tuple[Step, ...]


class SecretPolicy(Record):
    """What is secret: keys by name, whole files by path, and values by selector."""

    keys: tuple[str, ...] = DEFAULT_KEYS
    allow: tuple[str, ...] = DEFAULT_ALLOW
    paths: tuple[str, ...] = ()
    values: tuple[Selector, ...] = ()

    def is_secret_key(self, name: str) -> bool:
        """Whether a key called ``name`` (the last part of a dotted key) holds a secret."""
        plain = normalized(str(name).rsplit(".", 1)[-1].strip("\"'"))
        if not plain:
            return False
        found = any(fnmatch.fnmatchcase(plain, normalized(p)) for p in self.keys)
        return found and not any(fnmatch.fnmatchcase(plain, normalized(p)) for p in self.allow)

    def is_secret_file(self, path: str) -> bool:
        """Whether the whole of the file at ``path`` is secret (``[secrets] paths``)."""
        from lastgood.globs import matches

        return matches(path, self.paths)

    def selectors_for(self, path: str) -> tuple[Selector, ...]:
        """The selectors that apply to the file at ``path``."""
        from lastgood.globs import matches

        return tuple(s for s in self.values if matches(path, (s.files,)))


DEFAULT_POLICY = SecretPolicy()


def normalized(name: str) -> str:
    """A key name or pattern as compared: lower case, no ``_ - .`` or spaces."""
    return name.lower().translate(_NOT_IN_NAMES)


def parse_policy(table: Any, where: str) -> SecretPolicy:
    """The ``[secrets]`` table, every key checked; ConfigError naming the key otherwise."""
    if not isinstance(table, dict):
        raise ConfigError(f"[secrets] in {where} must be a table")
    for key in table:
        if key not in KEYS:
            import difflib

            close = difflib.get_close_matches(key, sorted(KEYS), n=1)
            hint = f"did you mean secrets.{close[0]}?" if close else f"known keys: {_known()}"
            raise ConfigError(f"unknown key secrets.{key} in {where}", hint=hint)
    replace = table.get("replace_defaults", False)
    if not isinstance(replace, bool):
        raise ConfigError(
            f"secrets.replace_defaults = {replace!r} in {where} must be true or false"
        )
    keys = _patterns(table, "keys", where, '"*client_key*"')
    allow = _patterns(table, "allow", where, '"*token_limit*"')
    return SecretPolicy(
        keys=tuple(keys) if replace else _merged(DEFAULT_KEYS, keys),
        allow=tuple(allow) if replace else _merged(DEFAULT_ALLOW, allow),
        paths=tuple(_patterns(table, "paths", where, '"integrations/*.env"')),
        values=tuple(
            parse_selector(text, f"secrets.values entry {number}", where)
            for number, text in enumerate(_strings(table, "values", where), 1)
        ),
    )


def parse_selector(text: str, key: str, where: str) -> Selector:
    """``FILES:$.path``: a file glob, a colon and a JSONPath-like path (see the module doc)."""
    files, colon, path = text.partition(":$")
    hint = f"write FILES:$.PATH, e.g. {SELECTOR_EXAMPLE}"
    if not colon or not files.strip():
        raise ConfigError(
            f"{key} = {text!r} in {where} needs a file pattern, a colon and a path from $",
            hint=hint,
        )
    steps: list[Step] = []
    position = 0
    pattern = re.compile(_STEP, re.VERBOSE)
    while position < len(path):
        step = pattern.match(path, position)
        if step is None:
            raise ConfigError(
                f"{key} = {text!r} in {where}: cannot read the path at {path[position:]!r}",
                hint=f"steps are .name, .*, ..name, [0], [*] and ['a.b']; {hint}",
            )
        steps.append(_step(step))
        position = step.end()
    if not steps:
        raise ConfigError(
            f"{key} = {text!r} in {where} selects the whole file",
            hint=f'to mark whole files secret, list them in paths = ["{files}"]',
        )
    return Selector(text, files.strip(), tuple(steps))


def _step(found: re.Match[str]) -> Step:
    groups = found.groupdict()
    if groups["descend"]:
        return Step("descend", groups["descend"])
    if groups["key"]:
        return Step("key", groups["key"])
    if groups["any"]:
        return Step("any")
    if groups["index"]:
        return Step("index", groups["index"])
    if groups["every"]:
        return Step("every")
    return Step("key", groups["quoted"])


def _patterns(table: dict[str, Any], key: str, where: str, example: str) -> list[str]:
    patterns = _strings(table, key, where)
    for pattern in patterns:
        if not pattern.strip():
            raise ConfigError(
                f"secrets.{key} in {where} has an empty pattern",
                hint=f"write glob patterns, e.g. {key} = [{example}]",
            )
    return patterns


def _strings(table: dict[str, Any], key: str, where: str) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(
            f"secrets.{key} in {where} must be a list of strings",
            hint=f'e.g. {key} = ["…"]; see docs/configuration.md#secrets',
        )
    return value


def _merged(defaults: tuple[str, ...], added: list[str]) -> tuple[str, ...]:
    return defaults + tuple(p for p in added if p not in defaults)


def _known() -> str:
    return ", ".join(sorted(KEYS))
