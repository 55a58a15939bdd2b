"""``lastgood report``: the status digest for stakeholders."""

from __future__ import annotations
