"""Canonical JSON values (``check_json``), JSON path operands and their Python semantics (``json_compare``)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, make_dataclass
from typing import Any

import ommi
import pytest
from ommi import ModelCollection, QueryError, ValidationError
from ommi.expressions import JsonComparison, JsonHas, Op
from ommi.models import get_schema
from ommi.models.types import MAX_JSON_DEPTH, check_json
from ommi.query.evaluate import holds, json_at, json_compare


class Size(enum.IntEnum):
    SMALL = 1


class Color(str, enum.Enum):  # noqa: UP042 - not StrEnum: str() of this one is "Color.RED"
    RED = "red"


@ommi.ommi_model(collection=ModelCollection("json_values"))
@dataclass
class Doc:
    meta: dict[str, Any] = field(default_factory=dict)
    tags: list[Any] = field(default_factory=list)
    either: dict[str, Any] | list[Any] | None = None
    id: int | None = None


def test_check_json_copies_and_normalises() -> None:
    """Subclasses of int and str become plain values, -0.0 becomes 0.0, and nothing is shared with the input."""
    inner = [1]
    source = {"size": Size.SMALL, "color": Color.RED, "zero": -0.0, "inner": inner, "flag": True}
    value = check_json(source)
    assert value == {"size": 1, "color": "red", "zero": 0.0, "inner": [1], "flag": True}
    assert type(value["size"]) is int and type(value["color"]) is str and type(value["flag"]) is bool
    assert str(value["zero"]) == "0.0"
    assert value["inner"] is not inner


def test_check_json_refuses_cycles_and_depth_without_recursion() -> None:
    """A list containing itself is refused by the depth limit; a deep value is walked without recursion."""
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(ValidationError, match="nested deeper"):
        check_json(cycle)
    deep: Any = []
    for _ in range(MAX_JSON_DEPTH - 1):
        deep = [deep]
    assert check_json(deep) == deep


def test_field_kinds_and_union() -> None:
    """``dict[...]`` refuses a list, ``list[...]`` a dict, ``dict | list`` takes either."""
    schema = get_schema(Doc)
    with pytest.raises(ValidationError, match="not a dict"):
        schema.by_name["meta"].encode([1])
    with pytest.raises(ValidationError, match="not a list"):
        schema.by_name["tags"].encode({"a": 1})
    assert schema.by_name["either"].encode([1]) == [1]
    assert schema.by_name["either"].encode({"a": 1}) == {"a": 1}


def test_path_nodes() -> None:
    """Paths build JsonComparison / JsonHas nodes with checked steps and operands."""
    node = Doc.meta["a"][0] >= 2
    assert isinstance(node, JsonComparison)
    assert (node.path, node.op, node.value) == (("a", 0), Op.GE, 2)
    assert isinstance(Doc.meta["x"] == None, JsonComparison)  # noqa: E711
    not_null: Any = Doc.meta["x"] != None  # noqa: E711
    assert not_null.op is Op.IS_NOT_NULL
    has = ommi.field(Doc.tags).has("x")
    assert isinstance(has, JsonHas) and has.path == ()
    for bad in (
        lambda: Doc.meta[True],  # type: ignore[index]
        lambda: Doc.meta[1.5],  # type: ignore[index]
        lambda: Doc.meta["a"] < None,
        lambda: bool(Doc.meta["a"]),
    ):
        with pytest.raises(QueryError):
            bad()


@pytest.mark.parametrize(
    ("op", "value", "operand", "expected"),
    [
        (Op.EQ, 1, 1.0, True),
        (Op.EQ, True, 1, False),
        (Op.EQ, 1, True, False),
        (Op.EQ, "1", 1, False),
        (Op.GT, "b", "a", True),
        (Op.GT, 5, "a", False),
        (Op.LT, None, 5, False),
        (Op.NE, None, 5, True),
        (Op.NE, "5", 5, True),
        (Op.NE, [5], 5, True),
        (Op.EQ, [5], 5, False),
        (Op.IS_NULL, None, None, True),
        (Op.IS_NOT_NULL, False, None, True),
    ],
)
def test_json_compare(op: Op, value: Any, operand: Any, expected: bool) -> None:
    assert json_compare(op, value, operand) is expected


def test_json_at_never_mixes_keys_and_indexes() -> None:
    """An int step reads a list only, a str step a dict only; anything else is missing (None)."""
    value = {"a": [10, {"b": 2}], "0": "key"}
    assert json_at(value, ("a", 1, "b")) == 2
    assert json_at(value, (0,)) is None
    assert json_at(value, ("a", "0")) is None
    assert json_at(value, ("a", 5)) is None
    assert json_at("text", (0,)) is None


def test_has_is_type_strict_and_top_level() -> None:
    rows = {"tags": [1, [2], True, "3"]}
    for operand, expected in ((1, True), (1.0, True), (2, False), (3, False), ("3", True), (True, True), (0, False)):
        node = ommi.field(Doc.tags).has(operand)
        assert holds(node, lambda f: rows[f.name]) is expected, operand


def test_object_and_bare_unions_are_not_json() -> None:
    """``object`` and a union of a JSON container with another type are refused; ``dict | list`` is any JSON."""
    for annotation in (object, dict[str, Any] | int, list[int] | str):
        thing = dataclass_with(annotation)
        with pytest.raises(ommi.ModelDefinitionError):
            ommi.ommi_model(collection=ModelCollection("json_refused"))(thing)


def dataclass_with(annotation: Any) -> type:

    return make_dataclass("Thing", [("value", annotation), ("id", int | None, field(default=None))])


def test_fields_and_paths_are_not_sequences() -> None:
    """``__getitem__`` does not make a field iterable (``list(Doc.tags)`` would not end); ``in`` says what to write."""
    with pytest.raises(TypeError, match="not iterable"):
        list(Doc.tags)
    with pytest.raises(TypeError, match="not iterable"):
        list(Doc.meta["a"])
    with pytest.raises(QueryError, match=r"has\(value\)"):
        _ = "x" in Doc.tags
    with pytest.raises(QueryError, match=r"has\(value\)"):
        _ = "x" in Doc.meta["a"]
