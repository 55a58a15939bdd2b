"""``lastgood.operations.init``: a commented lastgood.toml, the store folder, and .gitignore."""

from __future__ import annotations

from pathlib import Path

import pytest

from lastgood import config
from lastgood.errors import UsageError
from lastgood.operations.init import init


def test_init_writes_a_working_config_and_ignores_the_store(tmp_path: Path) -> None:
    root = tmp_path / "ops-config"  # not there yet: init makes it

    written = init(root)

    assert written == [str(root / "lastgood.toml"), str(root / ".gitignore")]
    assert (root / ".lastgood").is_dir()
    assert (root / ".gitignore").read_text() == ".lastgood/\n"
    loaded = config.load(root)
    assert list(loaded.environments) == ["staging", "production"]
    assert loaded.environment("production").protected


def test_an_existing_config_is_never_overwritten_unless_forced(tmp_path: Path) -> None:
    (tmp_path / "lastgood.toml").write_text("# ours\n")

    with pytest.raises(UsageError) as refused:
        init(tmp_path)

    assert refused.value.message == f"{tmp_path / 'lastgood.toml'} already exists"
    assert refused.value.hint == "edit it, or pass --force to overwrite it"
    assert (tmp_path / "lastgood.toml").read_text() == "# ours\n"
    assert not (tmp_path / ".lastgood").exists()
    init(tmp_path, force=True)
    assert "[env.staging]" in (tmp_path / "lastgood.toml").read_text()


@pytest.mark.parametrize("listed", [".lastgood/", ".lastgood"])
def test_a_gitignore_is_kept_and_the_store_added_once(tmp_path: Path, listed: str) -> None:
    (tmp_path / ".gitignore").write_text("node_modules/\n")

    init(tmp_path)
    again = init(tmp_path, force=True)

    assert (tmp_path / ".gitignore").read_text() == "node_modules/\n.lastgood/\n"
    assert again == [str(tmp_path / "lastgood.toml")]  # nothing more to add
    (tmp_path / ".gitignore").write_text(f"{listed}\n")
    assert init(tmp_path, force=True) == [str(tmp_path / "lastgood.toml")]
    assert (tmp_path / ".gitignore").read_text() == f"{listed}\n"
