"""``init``: write a commented ``lastgood.toml`` and create the store."""

from __future__ import annotations

from pathlib import Path

from lastgood.config import CONFIG_NAME
from lastgood.errors import UsageError
from lastgood.project import STORE_DIR

TEMPLATE = """\
# lastgood.toml: what is versioned, where it goes live, and how health is judged.
# Reference: docs/configuration.md

[versioning]
exclude = ["notes/**"]            # .git/ and .lastgood/ are always excluded
max_file_size = "1MiB"            # larger files are refused as data
allow = []                        # data-looking files that really are configuration

[validate]
# schemas = { "scoring/*.yaml" = "schemas/scoring.schema.json" }

[env.staging]
target = { type = "directory", path = "../live/staging", keep = 10 }
bake = "30s"          # how long checks must stay green before the version is last known good
interval = "3s"       # time between check rounds
failures = 2          # consecutive failed rounds that trip an automatic rollback
budget = "5m"         # restore-time budget (the five-minute rule)

# [[env.staging.preflight]]       # runs against the staged candidate, before anything goes live
# name = "sample-leads-score"
# type = "command"
# run = "python checks/score_sample.py"

# [[env.staging.check]]           # runs against the live environment after activation
# name = "scorer-up"
# type = "http"
# url = "http://127.0.0.1:8080/health"

[env.production]
target = { type = "directory", path = "../live/production", keep = 20 }
# configuration that lives in a tool behind an API instead (see docs/targets.md):
# target = { type = "command", activate = "tools/push.sh", live = "tools/live-version.sh" }
# target = { type = "http", url = "${TOOL_URL}/c/{env}", live = { url = "${TOOL_URL}/c/{env}" } }
bake = "2m"
interval = "5s"
failures = 2
budget = "5m"
protected = true
"""


def init(root: Path, *, force: bool = False) -> list[str]:
    """Create ``lastgood.toml`` and ``.lastgood/``; returns what was written."""
    written = []
    config_path = root / CONFIG_NAME
    if config_path.exists() and not force:
        raise UsageError(
            f"{config_path} already exists", hint="edit it, or pass --force to overwrite it"
        )
    root.mkdir(parents=True, exist_ok=True)
    config_path.write_text(TEMPLATE, encoding="utf-8")
    written.append(str(config_path))
    (root / STORE_DIR).mkdir(exist_ok=True)
    gitignore = root / ".gitignore"
    lines = gitignore.read_text(encoding="utf-8").splitlines() if gitignore.exists() else []
    if f"{STORE_DIR}/" not in lines and STORE_DIR not in lines:
        with open(gitignore, "a", encoding="utf-8") as handle:
            handle.write(f"{STORE_DIR}/\n")
        written.append(str(gitignore))
    return written
