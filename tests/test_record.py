"""Record: dataclass behaviour without import-time code generation."""

from __future__ import annotations

from typing import ClassVar

import pytest

from lastgood.record import Record, as_dict, field, fields_of, replace


class Point(Record, order=True):
    x: int
    y: int = 0
    kind: ClassVar[str] = "point"


class Bag(Record, frozen=False):
    name: str
    items: list[int] = field(default_factory=list)
    inner: Point | None = None


class Labelled(Point):
    label: str = ""


def test_fields_defaults_and_positional_or_keyword_arguments() -> None:
    assert fields_of(Point) == ("x", "y")
    assert Point(1) == Point(x=1, y=0) == Point(1, 0)
    assert repr(Point(1, 2)) == "Point(x=1, y=2)"
    assert fields_of(Labelled) == ("x", "y", "label")
    assert Labelled(1, 2, "a").label == "a"


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [((), {}, "missing 'x'"), ((1, 2, 3), {}, "takes 2"), ((1,), {"x": 2}, "repeated 'x'"),
     ((1,), {"z": 2}, "unexpected or repeated 'z'")],
)  # fmt: skip
def test_wrong_arguments_are_type_errors(args: tuple, kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(TypeError, match=message):
        Point(*args, **kwargs)


def test_frozen_records_are_immutable_hashable_and_ordered() -> None:
    point = Point(1, 2)
    with pytest.raises(AttributeError, match="immutable"):
        point.x = 3  # type: ignore[misc]
    assert {Point(1, 2), Point(1, 2)} == {point}
    assert sorted([Point(2, 0), Point(1, 5), Point(1, 2)]) == [
        Point(1, 2),
        Point(1, 5),
        Point(2, 0),
    ]
    assert Point(1, 2) != Labelled(1, 2)


def test_mutable_records_and_fresh_defaults() -> None:
    first, second = Bag("a"), Bag("b")
    first.items.append(1)
    assert second.items == []
    first.name = "renamed"
    assert first.name == "renamed"
    with pytest.raises(TypeError):
        hash(first)


def test_as_dict_and_replace() -> None:
    bag = Bag("a", [1], Point(1, 2))
    assert as_dict(bag) == {"name": "a", "items": [1], "inner": {"x": 1, "y": 2}}
    assert replace(Point(1, 2), y=5) == Point(1, 5)
