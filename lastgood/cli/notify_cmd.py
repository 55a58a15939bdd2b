"""``lastgood notify``: test the routes and read the delivery log."""

from __future__ import annotations
