"""The settings table: one place that drives environment variables, command options and the docs.

Each setting names its environment variable and says what it does; ``tests/test_docs.py``
fails when one is missing from ``docs/configuration.md``.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

from lastgood.record import Record


class Setting(Record):
    """One user-facing setting read from the environment."""

    env_var: str
    description: str

    def read(self) -> str | None:
        value = os.environ.get(self.env_var)
        return value if value not in (None, "") else None


STORE = Setting("LASTGOOD_STORE", "Store URL (any SQLAlchemy URL); default: .lastgood/store.db")
AUTHOR = Setting("LASTGOOD_AUTHOR", "Author recorded on versions and deployments")
WORKSPACE = Setting("LASTGOOD_WORKSPACE", "Workspace folder; default: the nearest lastgood.toml")
FAILPOINT = Setting(
    "LASTGOOD_FAILPOINT", "Comma-separated failpoint names that kill the process (crash tests)"
)
COLOR = Setting("NO_COLOR", "Any value turns off colour in terminal output")
SERVER = Setting(
    "LASTGOOD_SERVER", "URL of a lastgood server to act through instead of the store (--server)"
)
TOKEN = Setting("LASTGOOD_TOKEN", "API token for --server; never printed (--token)")
STORE_CONNECT_TIMEOUT = Setting(
    "LASTGOOD_STORE_CONNECT_TIMEOUT", "How long connecting to a PostgreSQL store may take; 10s"
)
STORE_STATEMENT_TIMEOUT = Setting(
    "LASTGOOD_STORE_STATEMENT_TIMEOUT",
    "How long one store statement may run or wait for a lock (SQLite: the busy timeout); 30s",
)

ALL = (
    STORE,
    AUTHOR,
    WORKSPACE,
    FAILPOINT,
    COLOR,
    SERVER,
    TOKEN,
    STORE_CONNECT_TIMEOUT,
    STORE_STATEMENT_TIMEOUT,
)


def mask_url(url: str) -> str:
    """Return the URL with its password replaced by ``***``, safe to print or log."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
