"""``lastgood documents``: tracked documents, their versions and diffs."""

from __future__ import annotations
