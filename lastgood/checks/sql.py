"""``type = "sql"``: a business-metric check over the team's own data.

"The scorer is up" is not enough when every lead scores zero; ``select avg(score) …`` with
``min = 0.01`` is what catches it. The first column of the first row is compared with ``min``,
``max`` and/or ``equals`` (or only with its baseline, under ``max_drop`` / ``max_rise``: that
first value is what the check measures); no rows or NULL is a failure, since a metric that
cannot be computed is not a healthy one. SQLAlchemy is imported only when a probe runs, so
reading the config stays light. Each probe opens one connection and disposes of the engine
afterwards: checks run every few seconds for a long time, and must never hold connections or
file handles between rounds.
Reads only (the query is the team's; a missing SQLite file is reported, never created).
"""

from __future__ import annotations

import difflib
import re
import time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

from lastgood.checks.base import Check, CheckContext, CheckResult
from lastgood.config import CheckSpec
from lastgood.errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Engine, Row

_OPTIONS = ("url", "query", "min", "max", "equals")
_URL_SHAPE = re.compile(r"^[A-Za-z][\w+.-]*://")
_LIBPQ_DRIVERS = {"psycopg", "psycopg2"}
_NO_FILE = {None, "", ":memory:"}


class SqlCheck(Check):
    """Run one query and compare its first value with ``min``, ``max`` and ``equals``."""

    type_name = "sql"

    def __init__(self, spec: CheckSpec) -> None:
        """Validate the options now, so a typo stops the deploy before anything goes live."""
        super().__init__(spec)
        _reject_unknown(spec)
        self.url = _required_text(spec, "url", 'write url = "sqlite:///../data/leads.db"')
        if not _URL_SHAPE.match(self.url):
            hint = 'write it like "sqlite:///../data/leads.db" or "postgresql://user@host/db"'
            raise _option_error(spec, "url", f"= {self.url!r} is not a database URL", hint)
        self.query = _required_text(spec, "query", 'write query = "select avg(score) from leads"')
        self.minimum = _number(spec, "min")
        self.maximum = _number(spec, "max")
        self.equals = _scalar(spec, "equals")
        unbounded = self.minimum is None and self.maximum is None and self.equals is None
        if unbounded and spec.compare is None:
            raise _option_error(
                spec,
                "min, max or equals",
                "is needed",
                'add min = 0.01 (or max = …, equals = …, or max_drop = "20%")',
            )

    @property
    def measures_value(self) -> bool:
        return True

    def probe(self, context: CheckContext) -> CheckResult:
        """Run the query once; connection and query errors are failed results, not crashes."""
        from sqlalchemy.exc import SQLAlchemyError

        try:
            url = resolve_url(self.url, context.root)
        except SQLAlchemyError as exc:
            return self._failed(f"url {self.url!r} is not a usable database URL: {exc}")
        missing = _missing_sqlite_file(url)
        if missing:
            return self._failed(f"SQLite database {missing} does not exist")
        try:
            row = _first_row(url, self.query, self.spec.timeout)
        except ImportError as exc:
            return self._failed(f"database driver not installed ({exc}); {_driver_hint(url)}")
        except SQLAlchemyError as exc:
            shown = url.render_as_string(hide_password=True)
            return self._failed(f"query failed on {shown}: {_reason(exc)}")
        return self._judge(row)

    def _judge(self, row: Row[Any] | None) -> CheckResult:
        """Compare the first value with the bounds, saying what was expected and seen."""
        expected = self._expectation()
        if row is None:
            return self._failed(f"query returned no rows, expected {expected}")
        value = _plain(row[0])
        if value is None:
            return self._failed(f"query returned NULL, expected {expected}")
        shown = _show(value)
        if not self._accepts(value):
            return self._failed(f"query returned {shown}, expected {expected}", value)
        detail = f"query returned {shown} (expected {expected})"
        return CheckResult(self.name, True, detail, data={"value": value})

    def _accepts(self, value: Any) -> bool:
        if self.equals is not None and not _same(value, self.equals):
            return False
        if self.minimum is None and self.maximum is None:
            return True
        if not _is_number(value):
            return False
        below = self.minimum is not None and value < self.minimum
        above = self.maximum is not None and value > self.maximum
        return not (below or above)

    def _expectation(self) -> str:
        parts = ["a value"]
        if self.minimum is not None:
            parts.append(f"≥ {_show(self.minimum)}")
        if self.maximum is not None:
            parts.append(f"≤ {_show(self.maximum)}")
        if self.equals is not None:
            parts.append(f"= {_show(self.equals)}")
        return " and ".join(parts[1:] or parts)

    def _failed(self, detail: str, value: Any = None) -> CheckResult:
        return CheckResult(self.name, False, detail, data={"value": value})


def resolve_url(url: str, root: Path) -> URL:
    """Parse ``url``; relative SQLite paths hang off the workspace, bare PostgreSQL uses psycopg.

    The config file's location, not the shell's cwd, decides where ``sqlite:///../data/x.db``
    points, so a check means the same thing whoever runs it from wherever.
    """
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    database = parsed.database
    is_uri = bool(parsed.query.get("uri")) or (database or "").startswith("file:")
    if parsed.get_backend_name() == "sqlite" and database not in _NO_FILE and not is_uri:
        parsed = parsed.set(database=str((root / str(database)).resolve()))
    return parsed


def _first_row(url: URL, query: str, timeout: float) -> Row[Any] | None:
    """Open one connection, fetch the first row, and dispose of everything."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool, connect_args=_timeout_arguments(url, timeout))
    if url.get_backend_name() == "sqlite":
        _interrupt_sqlite_after(engine, time.monotonic() + timeout)
    try:
        with engine.connect() as connection:
            return connection.execute(text(query)).first()
    finally:
        engine.dispose()


def _interrupt_sqlite_after(engine: Engine, deadline: float) -> None:
    """SQLite has no statement timeout; a progress handler aborts a query that runs too long.

    Without it a runaway query would outlive the check and keep its read lock on the team's file.
    """
    from sqlalchemy import event

    def on_connect(connection: Any, _record: Any) -> None:
        connection.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)

    event.listen(engine, "connect", on_connect)


def _timeout_arguments(url: URL, timeout: float) -> dict[str, Any]:
    """Driver arguments that make the database itself give up within the check's timeout."""
    if url.get_backend_name() == "sqlite":
        return {"timeout": timeout}
    if url.get_backend_name() == "postgresql" and url.get_driver_name() in _LIBPQ_DRIVERS:
        existing = url.query.get("options", "")
        existing = existing if isinstance(existing, str) else " ".join(existing)
        options = f"{existing} -c statement_timeout={max(1, int(timeout * 1000))}".strip()
        return {"connect_timeout": max(2, round(timeout)), "options": options}
    return {}


def _missing_sqlite_file(url: URL) -> str | None:
    """The path of a SQLite file that does not exist (connecting would create it)."""
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        return None
    return None if Path(database).exists() else database


def _driver_hint(url: URL) -> str:
    if url.get_backend_name() == "postgresql":
        return "install it with: pip install 'lastgood[postgres]'"
    return f"install the Python driver for {url.drivername} in lastgood's environment"


def _reason(error: Exception) -> str:
    """The driver's own message on one line, without SQLAlchemy's SQL echo and links."""
    original = getattr(error, "orig", None) or error
    return " ".join(str(original).split())


def _plain(value: Any) -> Any:
    """PostgreSQL's ``numeric`` arrives as Decimal; compare and show it as a float."""
    return float(value) if isinstance(value, Decimal) else value


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(value: Any, expected: Any) -> bool:
    """Equality where ``True`` is not ``1`` (SQLite has no booleans, so 1 = true there)."""
    if isinstance(expected, bool) and _is_number(value):
        return value == int(expected)
    return isinstance(value, bool) == isinstance(expected, bool) and value == expected


def _show(value: Any) -> str:
    """Values as written in lastgood.toml: 'text', 0.5, true."""
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, str) else str(value)


def _required_text(spec: CheckSpec, key: str, hint: str) -> str:
    value = spec.options.get(key)
    if not isinstance(value, str) or not value.strip():
        problem = "is missing" if value is None else f"= {value!r} must be text"
        raise _option_error(spec, key, problem, hint)
    return value


def _number(spec: CheckSpec, key: str) -> float | None:
    value = spec.options.get(key)
    if value is not None and not _is_number(value):
        raise _option_error(spec, key, f"= {value!r} is not a number", f"write {key} = 0.01")
    return value


def _scalar(spec: CheckSpec, key: str) -> Any:
    value = spec.options.get(key)
    if value is not None and not isinstance(value, str | int | float | bool):
        raise _option_error(
            spec, key, f"= {value!r} must be a number, text or true/false", f"write {key} = 1"
        )
    return value


def _reject_unknown(spec: CheckSpec) -> None:
    """Refuse keys this check does not know, suggesting the closest one."""
    for key in spec.options:
        if key not in _OPTIONS:
            close = difflib.get_close_matches(key, _OPTIONS, n=1)
            hint = f"did you mean {close[0]}?" if close else f"known keys: {', '.join(_OPTIONS)}"
            raise _option_error(spec, key, "is not an option of sql checks", hint)


def _option_error(spec: CheckSpec, key: str, problem: str, hint: str) -> ConfigError:
    return ConfigError(f"sql check {spec.name!r}: {key} {problem}", hint=hint)
