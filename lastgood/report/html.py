"""The digest as one self-contained HTML page for email: inline CSS, no scripts, no links out.

Rendered by the Jinja2 template ``templates/digest.html`` with autoescaping on, so a reason or a
document name typed by anyone cannot inject markup into the mail.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from lastgood.report import words as w
from lastgood.report.digest import Digest

TEMPLATES = Path(__file__).parent / "templates"


@cache
def _environment() -> Any:
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters.update(
        seconds=w.seconds, when=w.when, label=w.label, ago=w.ago, result=w.result
    )
    return environment


def render_html(digest: Digest) -> str:
    template = _environment().get_template("digest.html")
    return str(
        template.render(
            digest=digest,
            title=w.title(digest),
            period=w.period(digest),
            nothing=w.nothing_happened(digest) if digest.quiet else None,
            headline=w.headline,
            now=w.now,
            how=w.HOW,
            incidents=w.INCIDENTS,
            verdict=w.restore_verdict,
        )
    )
