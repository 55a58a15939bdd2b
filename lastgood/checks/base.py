"""The check contract: a health probe that always answers within its timeout.

A check type is a subclass of :class:`Check` registered by name (``lastgood.checks.registry``).
``probe(context)`` does the work and returns a :class:`CheckResult`, or raises any exception,
which counts as a failure with the exception's message. A check that measures a number puts it
in ``data["value"]`` and says so with :attr:`Check.measures_value`, which lets it be compared
with its baseline (``max_drop``, ``max_rise``). :func:`run_check` wraps every probe in
its timeout on a worker thread, so a hang is a failure, never a stuck deploy.
"""

from __future__ import annotations

import difflib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from lastgood.config import CHECK_COMMON_KEYS, CheckSpec
from lastgood.errors import ConfigError
from lastgood.record import Record, field

if TYPE_CHECKING:
    from lastgood.rows import Consumer


class CheckContext(Record):
    """What a check may know: the environment, the version, and where its files are.

    ``fleet`` reads the consumers of an environment as the store holds them (their versions
    and reported metrics), where lastgood has a store at hand (a deploy, the watcher); None
    elsewhere (a host agent, a preflight), where a ``fleet`` check says it cannot judge.

    ``first_live`` is true in the bake of a deploy that found nothing live on the environment:
    no consumer could serve (or report on) anything before this version went live, so a
    ``fleet`` check left without reports at the end of that bake passes, saying why, instead
    of failing the environment's first deploy."""

    env: str
    version: int | None
    path: Path | None
    root: Path
    fleet: Callable[[str], Sequence[Consumer]] | None = None
    first_live: bool = False

    def environ(self) -> dict[str, str]:
        """The ``LASTGOOD_*`` variables given to commands run by checks and preflights."""
        return {
            "LASTGOOD_ENV": self.env,
            "LASTGOOD_VERSION": "" if self.version is None else f"v{self.version}",
            "LASTGOOD_PATH": "" if self.path is None else str(self.path),
        }


class CheckResult(Record):
    """The outcome of one probe.

    ``data["value"]`` is the number it measured, if any; ``data["inconclusive"]`` (true) marks
    a result that could not judge yet (a ``fleet`` check with too few reports): it passes, but
    a bake cannot end on it, and from the bake's end on it fails (see
    :func:`lastgood.operations.checking.run_round`)."""

    name: str
    ok: bool
    detail: str
    duration: float = 0.0
    data: Mapping[str, Any] = field(default_factory=dict)


class Check(ABC):
    """Base class for every check type."""

    type_name: ClassVar[str] = ""

    def __init__(self, spec: CheckSpec) -> None:
        """Validate ``spec.options`` here and raise ConfigError naming the check when wrong."""
        self.spec = spec

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def measures_value(self) -> bool:
        """Whether every result carries the number it measured as ``data["value"]``.

        Only such a check may have ``max_drop`` / ``max_rise`` (see :mod:`lastgood.comparison`);
        a type that measures one says so by overriding this."""
        return False

    @property
    def value_name(self) -> str:
        """What the measured number is called in messages (``scores.mean 41 → 19.5``)."""
        return "value"

    @abstractmethod
    def probe(self, context: CheckContext) -> CheckResult:
        """Probe once. May raise; must try to honour ``self.spec.timeout`` itself."""


def reject_unknown_options(spec: CheckSpec, own: Sequence[str]) -> None:
    """Refuse a key that is neither one of this check type's ``own`` options nor a key every
    check takes, suggesting the closest of all of them (``max_dorp``: did you mean max_drop?)."""
    known = [*own, *sorted(CHECK_COMMON_KEYS)]
    for key in spec.options:
        if key not in own:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean {close[0]}?" if close else f"known keys: {', '.join(known)}"
            raise ConfigError(
                f"{spec.type} check {spec.name!r}: {key} is not an option of {spec.type} checks",
                hint=hint,
            )


def run_check(check: Check, context: CheckContext) -> CheckResult:
    """Run one probe under its timeout; exceptions and hangs become failed results."""
    box: dict[str, CheckResult] = {}
    started = time.monotonic()

    def work() -> None:
        try:
            box["result"] = check.probe(context)
        except Exception as exc:  # a probe's failure is a result, never a crash
            box["result"] = CheckResult(check.name, False, f"{type(exc).__name__}: {exc}")

    import threading

    worker = threading.Thread(target=work, name=f"check-{check.name}", daemon=True)
    worker.start()
    worker.join(check.spec.timeout + 0.5)
    elapsed = time.monotonic() - started
    if "result" not in box:
        return CheckResult(check.name, False, f"no answer within {check.spec.timeout:g} s", elapsed)
    result = box["result"]
    return CheckResult(result.name, result.ok, result.detail, elapsed, result.data)


MISSING: Any = object()
"""What :func:`value_at` answers when the path leads nowhere."""


def value_at(document: Any, path: str) -> Any:
    """The value at a dotted ``path`` (``scores.mean``, ``items.0.n``) in a JSON document, through
    objects and lists; :data:`MISSING` when the path leads nowhere."""
    current = document
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return MISSING
    return current


def number_at(document: Any, path: str) -> float | None:
    """The number at a dotted ``path`` in a JSON document (see :func:`value_at`).

    None when the path leads nowhere or to something that is not a number (``true`` is not 1).
    The one spelling of "the value a check measures" for every check type that reads JSON."""
    found = value_at(document, path)
    if isinstance(found, bool) or not isinstance(found, int | float):
        return None
    return float(found)
