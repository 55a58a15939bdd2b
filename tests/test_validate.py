"""Syntax and JSON Schema validation of a bundle, before anything is staged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lastgood.errors import ConfigError, ValidationError
from lastgood.validate import validate_bundle

SCORING_SCHEMA = {
    "type": "object",
    "required": ["threshold", "rules"],
    "properties": {
        "threshold": {"type": "number", "minimum": 0, "maximum": 1},
        "rules": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field"],
                "properties": {"field": {"type": "string"}, "weight": {"type": "number"}},
            },
        },
    },
}
SCHEMAS = {"scoring/*.yaml": "schemas/scoring.schema.json"}
GOOD_SCORING = b"threshold: 0.4\nrules:\n  - field: industry\n    weight: 2\n"


def bundle(files: dict[str, str | bytes]) -> dict[str, bytes]:
    """A bundle's files as bytes, the way the workspace collects them."""
    return {
        path: data if isinstance(data, bytes) else data.encode() for path, data in files.items()
    }


def with_schema(files: dict[str, bytes], schema: object = SCORING_SCHEMA) -> dict[str, bytes]:
    return {**files, "schemas/scoring.schema.json": json.dumps(schema).encode()}


def problems(files: dict[str, bytes], root: Path, schemas: dict[str, str] | None = None) -> str:
    """The ValidationError message for ``files``; fails the test when they are valid."""
    with pytest.raises(ValidationError) as caught:
        validate_bundle(files, SCHEMAS if schemas is None else schemas, root)
    assert caught.value.exit_code == 5
    assert caught.value.hint
    return caught.value.message


def test_valid_bundle_passes(tmp_path: Path) -> None:
    files = with_schema(
        bundle(
            {
                "scoring/leads.yaml": GOOD_SCORING,
                "routing.json": '{"regions": ["eu"]}',
                "lastgood.toml": '[env.staging]\ntarget = { type = "directory", path = "x" }\n',
                "notes.txt": "{ not json, not checked }",
            }
        )
    )
    assert validate_bundle(files, SCHEMAS, tmp_path) is None


def test_json_syntax_error_names_the_file_and_position(tmp_path: Path) -> None:
    message = problems(bundle({"routing.json": '{"regions": ["eu",]}'}), tmp_path, {})
    assert message.startswith("1 problem in configuration files:")
    assert "routing.json: invalid JSON: " in message
    assert "(at line 1, column 19)" in message


def test_yaml_syntax_error_in_a_later_document_names_the_file(tmp_path: Path) -> None:
    text = "a: 1\n---\nb: [1, 2\nc: 3\n"
    message = problems(bundle({"prompts/intro.yml": text}), tmp_path, {})
    assert "prompts/intro.yml: invalid YAML: " in message
    assert "(at line 4, column" in message


def test_toml_syntax_error_names_the_file(tmp_path: Path) -> None:
    message = problems(bundle({"settings.toml": "a = \n"}), tmp_path, {})
    assert "settings.toml: invalid TOML: " in message
    assert "line 1" in message


def test_file_that_is_not_utf8_is_a_problem(tmp_path: Path) -> None:
    message = problems(bundle({"routing.json": b'{"a": "\xff"}'}), tmp_path, {})
    assert "routing.json: not UTF-8 text (byte 7)" in message


def test_schema_failure_names_file_and_field(tmp_path: Path) -> None:
    text = "threshold: high\nrules:\n  - field: industry\n  - weight: 3\n"
    message = problems(with_schema(bundle({"scoring/leads.yaml": text})), tmp_path)
    assert "scoring/leads.yaml: 'high' is not of type 'number' (at threshold)" in message
    assert "scoring/leads.yaml: 'field' is a required property (at rules[1])" in message


def test_schema_failure_at_the_top_level(tmp_path: Path) -> None:
    message = problems(with_schema(bundle({"scoring/leads.yaml": "threshold: 0.5\n"})), tmp_path)
    assert "scoring/leads.yaml: 'rules' is a required property (at top level)" in message


def test_empty_yaml_file_is_checked_as_null(tmp_path: Path) -> None:
    message = problems(with_schema(bundle({"scoring/leads.yaml": ""})), tmp_path)
    assert "scoring/leads.yaml: None is not of type 'object' (at top level)" in message


def test_each_yaml_document_is_checked(tmp_path: Path) -> None:
    text = GOOD_SCORING.decode() + "---\nthreshold: 2\nrules: []\n"
    message = problems(with_schema(bundle({"scoring/leads.yaml": text})), tmp_path)
    assert (
        "scoring/leads.yaml: 2 is greater than the maximum of 1 in document 2 (at threshold)"
        in (message)
    )


def test_all_problems_are_collected(tmp_path: Path) -> None:
    files = with_schema(
        bundle(
            {
                "scoring/a.yaml": "threshold: -1\nrules: []\n",
                "scoring/b.yaml": "threshold: [\n",
                "routing.json": "{",
                "settings.toml": "x = = 1",
                "scoring/c.yaml": GOOD_SCORING,
            }
        )
    )
    message = problems(files, tmp_path)
    assert message.startswith("4 problems in configuration files:")
    lines = message.splitlines()[1:]
    assert [line.split(":")[0].strip() for line in lines] == [
        "routing.json",
        "scoring/b.yaml",
        "settings.toml",
        "scoring/a.yaml",
    ]


def test_files_outside_the_pattern_are_not_schema_checked(tmp_path: Path) -> None:
    files = with_schema(bundle({"prompts/leads.yaml": "threshold: high\n"}))
    assert validate_bundle(files, SCHEMAS, tmp_path) is None


def test_double_star_pattern_covers_subfolders(tmp_path: Path) -> None:
    files = with_schema(bundle({"scoring/eu/leads.yaml": "threshold: high\nrules: []\n"}))
    message = problems(files, tmp_path, {"scoring/**": "schemas/scoring.schema.json"})
    assert "scoring/eu/leads.yaml: 'high' is not of type 'number' (at threshold)" in message


def test_matched_file_of_unknown_kind_is_a_problem(tmp_path: Path) -> None:
    files = with_schema(bundle({"scoring/notes.txt": "hello"}))
    message = problems(files, tmp_path, {"scoring/*": "schemas/scoring.schema.json"})
    assert "scoring/notes.txt: cannot be checked against schemas/scoring.schema.json" in message


def test_toml_and_json_files_are_schema_checked(tmp_path: Path) -> None:
    files = with_schema(
        bundle({"scoring/a.toml": "threshold = 5\nrules = []\n", "scoring/b.json": "{}"})
    )
    schemas = {
        "scoring/*.toml": SCHEMAS["scoring/*.yaml"],
        "scoring/*.json": SCHEMAS["scoring/*.yaml"],
    }
    message = problems(files, tmp_path, schemas)
    assert "scoring/a.toml: 5 is greater than the maximum of 1 (at threshold)" in message
    assert "scoring/b.json: 'threshold' is a required property (at top level)" in message


def test_schema_in_the_bundle_wins_over_the_folder(tmp_path: Path) -> None:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "scoring.schema.json").write_text(json.dumps({"type": "string"}))
    files = with_schema(bundle({"scoring/leads.yaml": GOOD_SCORING}))
    assert validate_bundle(files, SCHEMAS, tmp_path) is None


def test_schema_is_read_from_the_root_when_not_in_the_bundle(tmp_path: Path) -> None:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "scoring.schema.json").write_text(json.dumps(SCORING_SCHEMA))
    message = problems(bundle({"scoring/leads.yaml": "threshold: high\nrules: []\n"}), tmp_path)
    assert "(at threshold)" in message


def test_missing_schema_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        validate_bundle(bundle({"scoring/leads.yaml": GOOD_SCORING}), SCHEMAS, tmp_path)
    assert "schema schemas/scoring.schema.json named in [validate] schemas does not exist" in str(
        caught.value
    )
    assert caught.value.hint and "[validate] schemas" in caught.value.hint


def test_invalid_schema_is_a_config_error(tmp_path: Path) -> None:
    files = with_schema(bundle({"scoring/leads.yaml": GOOD_SCORING}), {"type": 12})
    with pytest.raises(
        ConfigError, match=r"schema schemas/scoring.schema.json is not a valid JSON"
    ):
        validate_bundle(files, SCHEMAS, tmp_path)


def test_unparsable_schema_is_a_config_error(tmp_path: Path) -> None:
    files = {**bundle({"scoring/leads.yaml": GOOD_SCORING}), "schemas/scoring.schema.json": b"{"}
    with pytest.raises(ConfigError, match=r"schema schemas/scoring.schema.json does not parse"):
        validate_bundle(files, SCHEMAS, tmp_path)


def test_unresolvable_reference_is_a_config_error(tmp_path: Path) -> None:
    files = with_schema(bundle({"scoring/leads.yaml": GOOD_SCORING}), {"$ref": "other.json"})
    with pytest.raises(ConfigError, match=r"has a \$ref that cannot be resolved"):
        validate_bundle(files, SCHEMAS, tmp_path)
