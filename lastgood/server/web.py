"""The web page (being built): server-rendered pages for people who are not engineers."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
