"""Small value classes that cost nothing at import: the records every lastgood module passes around.

Why not :mod:`dataclasses`? A rollback must finish faster than a ``git revert``
(docs/performance.md), and ``@dataclass`` compiles a handful of methods for every class when its
module is imported: about 0.6 ms per class, 13 ms over the 24 classes a rollback loads, plus 4 ms
to import ``dataclasses`` and ``inspect``: a quarter of the time budget. :class:`Record` gives the
same behaviour from a few generic methods defined once, and :pep:`681` (``dataclass_transform``)
tells type checkers to treat subclasses exactly like dataclasses::

    class Release(Record, order=True):
        version: int
        content_hash: str

    class Outcome(Record, frozen=False):
        plan: list[PlanStep] = field(default_factory=list)

Fields are the annotated names (base classes first; ``ClassVar`` excluded), defaults are class
attributes. Records are immutable unless declared ``frozen=False``; equality, hashing (frozen
only), ordering (``order=True``) and ``repr`` follow the field values, as with dataclasses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar, dataclass_transform

T = TypeVar("T")
R = TypeVar("R", bound="Record")


class _Factory:
    """A default made fresh for every instance (``field(default_factory=list)``)."""

    __slots__ = ("make",)

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make


def field(*, default_factory: Callable[[], T]) -> T:
    """A field whose default is built per instance, spelled as with dataclasses."""
    return _Factory(default_factory)  # type: ignore[return-value]


@dataclass_transform(eq_default=True, frozen_default=True, field_specifiers=(field,))
class Record:
    """Base class of lastgood's records; see the module docstring."""

    _fields: ClassVar[tuple[str, ...]] = ()
    _defaults: ClassVar[dict[str, Any]] = {}
    _frozen: ClassVar[bool] = True

    def __init_subclass__(cls, *, frozen: bool = True, order: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        names: list[str] = []
        for klass in reversed(cls.__mro__):
            own = klass.__dict__.get("__annotations__", {})  # noqa: RUF063 (no inspect import)
            for name, annotation in own.items():
                if name not in names and not str(annotation).startswith("ClassVar"):
                    names.append(name)
        cls._fields = tuple(name for name in names if not name.startswith("_"))
        cls._defaults = {n: getattr(cls, n) for n in cls._fields if hasattr(cls, n)}
        cls._frozen = frozen
        if not frozen:
            cls.__hash__ = None  # type: ignore[assignment]  # mutable and equal-by-value
        if order:
            for name, compare in _ORDERING.items():
                setattr(cls, name, compare)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cls = type(self)
        if not kwargs and len(args) == len(cls._fields):  # a row read back: every field in
            self.__dict__.update(zip(cls._fields, args, strict=True))  # order, the quick way
            return
        if len(args) > len(cls._fields):
            raise TypeError(f"{cls.__name__}() takes {len(cls._fields)} arguments")
        values = dict(zip(cls._fields, args, strict=False))
        for name, value in kwargs.items():
            if name not in cls._fields or name in values:
                raise TypeError(f"{cls.__name__}() got an unexpected or repeated {name!r}")
            values[name] = value
        for name in cls._fields:
            if name not in values:
                if name not in cls._defaults:
                    raise TypeError(f"{cls.__name__}() is missing {name!r}")
                default = cls._defaults[name]
                values[name] = default.make() if isinstance(default, _Factory) else default
        self.__dict__.update(values)

    def __setattr__(self, name: str, value: Any) -> None:
        if self._frozen:
            raise AttributeError(f"{type(self).__name__} is immutable: cannot set {name!r}")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        if self._frozen:
            raise AttributeError(f"{type(self).__name__} is immutable: cannot delete {name!r}")
        object.__delattr__(self, name)

    def _values(self) -> tuple[Any, ...]:
        return tuple(self.__dict__[name] for name in self._fields)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record) or type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash((type(self), self._values()))

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={self.__dict__[name]!r}" for name in self._fields)
        return f"{type(self).__name__}({shown})"


def _compare(operator: Callable[[tuple[Any, ...], tuple[Any, ...]], bool]) -> Callable[..., Any]:
    # object, not bool: NotImplemented for another class (mypy takes it as Any outside the
    # methods it knows as binary dunders, and these become __lt__ … only on the class)
    def compare(self: Record, other: object) -> object:
        if not isinstance(other, Record) or type(other) is not type(self):
            return NotImplemented
        return operator(self._values(), other._values())

    return compare


_ORDERING = {
    "__lt__": _compare(lambda a, b: a < b),
    "__le__": _compare(lambda a, b: a <= b),
    "__gt__": _compare(lambda a, b: a > b),
    "__ge__": _compare(lambda a, b: a >= b),
}


def fields_of(record: Record | type[Record]) -> tuple[str, ...]:
    """The field names of a record class or instance, in order."""
    return record._fields


def as_dict(record: Record) -> dict[str, Any]:
    """The record as a plain dict, nested records, lists and dicts included (``asdict``)."""
    return {name: _plain(record.__dict__[name]) for name in record._fields}


def _plain(value: Any) -> Any:
    if isinstance(value, Record):
        return as_dict(value)
    if isinstance(value, list | tuple):
        return type(value)(_plain(item) for item in value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def replace(record: R, **changes: Any) -> R:
    """A copy of ``record`` with some fields changed."""
    return type(record)(**{**{n: record.__dict__[n] for n in record._fields}, **changes})
