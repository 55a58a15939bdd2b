"""Refuse a bundle whose files do not parse or do not match their JSON Schemas.

A broken YAML file or a threshold of ``"high"`` where a number belongs is the cheapest incident
to prevent: it is caught here, before anything is staged. Every problem in every file is
collected before raising, so one run shows the whole list instead of one error per attempt.
Schemas are named in ``[validate] schemas``
(``{ "scoring/*.yaml" = "schemas/scoring.schema.json" }``) and read from the bundle itself when
it carries them, so a version is checked against the schema it shipped with. Reads only.

jsonschema and PyYAML are imported where they are used: together they cost over 100 ms, and
every command that can deploy imports this module, most of them never validating anything.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from lastgood.errors import ConfigError, ValidationError
from lastgood.globs import matches

_MESSAGE_LIMIT = 200


class _Unparsable(Exception):
    """A file's syntax error, already phrased for people."""


def validate_bundle(files: Mapping[str, bytes], schemas: Mapping[str, str], root: Path) -> None:
    """Raise ValidationError listing every syntax and schema problem in ``files``.

    ``schemas`` maps glob patterns to schema paths; a schema is read from ``files`` when present
    there, else from ``root``. A schema that is missing or itself invalid is a ConfigError, since
    the fault is in ``lastgood.toml`` or the schema, not in the files being checked.
    """
    loaded = {pattern: load_schema(path, files, root) for pattern, path in schemas.items()}
    problems: list[str] = []
    documents: dict[str, list[Any]] = {}
    for name in sorted(files):
        try:
            parsed = parse_file(name, files[name])
        except _Unparsable as exc:
            problems.append(f"{name}: {exc}")
            continue
        if parsed is not None:
            documents[name] = parsed
    for pattern, (schema_path, validator) in loaded.items():
        for name in sorted(name for name in files if matches(name, (pattern,))):
            problems.extend(_schema_problems(name, documents, schema_path, validator))
    if problems:
        raise ValidationError(_summary(problems), hint=_hint(schemas))


def parse_file(name: str, data: bytes) -> list[Any] | None:
    """The documents in one file, by extension; None for kinds that have no syntax to check.

    Raises ``_Unparsable`` with the parser's message and position.
    """
    parser = _parser_for(name)
    if parser is None:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Unparsable(f"not UTF-8 text (byte {exc.start})") from exc
    return parser(text)


def load_schema(path: str, files: Mapping[str, bytes], root: Path) -> tuple[str, Any]:
    """Read, parse and check one schema; returns its path and a ready validator."""
    where = "the bundle" if path in files else str(root)
    try:
        data = files[path] if path in files else (root / path).read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"schema {path} named in [validate] schemas does not exist in {where}",
            hint="create the schema file, or fix the path in [validate] schemas in lastgood.toml",
        ) from exc
    try:
        documents = parse_file(path, data)
    except _Unparsable as exc:
        raise ConfigError(f"schema {path} does not parse: {exc}") from exc
    if not documents or len(documents) != 1 or not isinstance(documents[0], dict | bool):
        raise ConfigError(
            f"schema {path} is not a JSON Schema (a .json, .yaml or .toml file with one object)"
        )
    return path, _validator(path, documents[0])


def _validator(path: str, schema: Any) -> Any:
    import jsonschema.exceptions
    import jsonschema.validators

    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        raise ConfigError(
            f"schema {path} is not a valid JSON Schema: {_shorten(exc.message)} "
            f"(at {_field(exc.absolute_path)})",
            hint="see https://json-schema.org/understanding-json-schema/ for the keywords",
        ) from exc
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def _schema_problems(
    name: str, documents: Mapping[str, list[Any]], schema_path: str, validator: Any
) -> list[str]:
    """One line per schema violation in ``name``; files that failed to parse are skipped."""
    if name not in documents:
        if _parser_for(name) is None:
            return [f"{name}: cannot be checked against {schema_path} (not JSON, YAML or TOML)"]
        return []
    found = documents[name] or [None]  # an empty YAML file is one empty document
    problems: list[str] = []
    for index, document in enumerate(found):
        which = f" in document {index + 1}" if len(found) > 1 else ""
        errors = _errors(validator, document, schema_path)
        problems.extend(
            f"{name}: {_shorten(error.message)}{which} (at {_field(error.absolute_path)})"
            for error in errors
        )
    return problems


def _errors(validator: Any, document: Any, schema_path: str) -> list[Any]:
    """The schema violations in one document, in field order."""
    import referencing.exceptions

    try:
        found = list(validator.iter_errors(document))
    except referencing.exceptions.Unresolvable as exc:
        raise ConfigError(
            f"schema {schema_path} has a $ref that cannot be resolved: {exc}",
            hint="keep the schema in one file, with shared parts under $defs",
        ) from exc
    return sorted(found, key=lambda error: [str(part) for part in error.path])


def _parser_for(name: str) -> Callable[[str], list[Any]] | None:
    lowered = name.lower()
    if lowered.endswith(".json"):
        return _parse_json
    if lowered.endswith((".yaml", ".yml")):
        return _parse_yaml
    if lowered.endswith(".toml"):
        return _parse_toml
    return None


def _parse_json(text: str) -> list[Any]:
    try:
        return [json.loads(text)]
    except json.JSONDecodeError as exc:
        raise _Unparsable(
            f"invalid JSON: {exc.msg} (at line {exc.lineno}, column {exc.colno})"
        ) from exc


def _parse_yaml(text: str) -> list[Any]:
    import yaml

    try:
        return list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        where = f" (at line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise _Unparsable(f"invalid YAML: {problem}{where}") from exc


def _parse_toml(text: str) -> list[Any]:
    try:
        return [tomllib.loads(text)]
    except tomllib.TOMLDecodeError as exc:
        raise _Unparsable(f"invalid TOML: {exc}") from exc


def _field(path: Iterable[Any]) -> str:
    """``rules[2].threshold`` from a JSON Schema error path; ``top level`` for the root."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "top level"


def _shorten(message: str) -> str:
    """Schema messages quote whole values; keep the line readable."""
    if len(message) > _MESSAGE_LIMIT:
        return message[:_MESSAGE_LIMIT] + "…"
    return message


def _summary(problems: list[str]) -> str:
    count = f"{len(problems)} problem" + ("" if len(problems) == 1 else "s")
    return f"{count} in configuration files:\n" + "\n".join(f"  {p}" for p in problems)


def _hint(schemas: Mapping[str, str]) -> str:
    if schemas:
        return "fix each file listed and run again; schemas are set in [validate] schemas"
    return "fix each file listed and run again"
