"""Versioning rules: logic, never data; nothing outside the workspace."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lastgood.config import Versioning
from lastgood.errors import RawDataError
from lastgood.workspace import check_relative_path, collect


def make(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_collects_config_and_skips_internal_folders(tmp_path: Path) -> None:
    make(tmp_path, {"a.yaml": "x", "rules/b.json": "{}", ".git/HEAD": "h", ".lastgood/s": "s",
                    "lastgood.toml": "", "notes/todo.md": "n"})  # fmt: skip
    bundle = collect(tmp_path, Versioning(exclude=("notes/**",)))
    assert sorted(bundle.files) == ["a.yaml", "rules/b.json"]


def test_same_content_same_hash(tmp_path: Path) -> None:
    make(tmp_path / "one", {"a.yaml": "x: 1", "b/c.txt": "c"})
    make(tmp_path / "two", {"b/c.txt": "c", "a.yaml": "x: 1"})
    first = collect(tmp_path / "one", Versioning())
    second = collect(tmp_path / "two", Versioning())
    assert first.content_hash == second.content_hash


@pytest.mark.parametrize("name", ["leads.csv", "dump/export.jsonl", "crm.sqlite", "backup.zip"])
def test_data_files_are_refused_with_the_fix(tmp_path: Path, name: str) -> None:
    make(tmp_path, {"a.yaml": "x", name: "1,2,3"})
    with pytest.raises(RawDataError) as raised:
        collect(tmp_path, Versioning())
    text = str(raised.value)
    assert name in text and "looks like raw data" in text
    assert "exclude" in text and "allow" in text


def test_allow_lets_a_data_looking_file_in(tmp_path: Path) -> None:
    make(tmp_path, {"routing/regions.csv": "eu,1"})
    bundle = collect(tmp_path, Versioning(allow=("routing/regions.csv",)))
    assert list(bundle.files) == ["routing/regions.csv"]


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    make(tmp_path, {"big.yaml": "x" * 2000})
    with pytest.raises(RawDataError, match=r"big.yaml is 2,000 bytes, more than max_file_size"):
        collect(tmp_path, Versioning(max_file_size=1000))


def test_symlinks_pointing_out_are_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text("secret: 1")
    root = tmp_path / "ws"
    make(root, {"a.yaml": "x"})
    os.symlink(outside, root / "linked.yaml")
    with pytest.raises(RawDataError, match=r"linked\.yaml is a symlink to .*outside the workspace"):
        collect(root, Versioning())
    os.remove(root / "linked.yaml")
    os.symlink(tmp_path, root / "linked-dir")
    with pytest.raises(RawDataError, match="linked-dir is a symlink"):
        collect(root, Versioning())


@pytest.mark.parametrize("path", ["../x.yaml", "/etc/passwd", "a/../../b"])
def test_escaping_paths_are_refused(path: str) -> None:
    with pytest.raises(RawDataError, match="escapes the workspace"):
        check_relative_path(path)
