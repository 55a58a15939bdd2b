"""The SDK applications use to read live config from ``lastgood serve``.

::

    from lastgood.client import LiveConfig

    config = LiveConfig("http://lastgood.internal:8470", "production", token=TOKEN)
    threshold = config.get("scoring/thresholds.yaml")["threshold"]

Importing it stays light (the standard library and lastgood's hashing; no httpx, SQLAlchemy,
FastAPI or pydantic), so an application pays a few milliseconds for it. See docs/sdk.md.
"""

from lastgood.client.live import LiveConfig, Source
from lastgood.client.notifier import ChangeCallback
from lastgood.client.payload import content_hash_of, verify_payload
from lastgood.client.snapshot import Snapshot, parse_file

__all__ = [
    "ChangeCallback",
    "LiveConfig",
    "Snapshot",
    "Source",
    "content_hash_of",
    "parse_file",
    "verify_payload",
]
