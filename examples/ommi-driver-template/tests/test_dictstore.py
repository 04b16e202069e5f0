"""The dictstore driver's own tests: what the conformance suite cannot know about.

Its settings and URLs, its registration through the ``ommi`` entry point, its
JSON file surviving a restart, and the errors of what it declares absent.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import ommi
import pytest
from ommi import (
    ConfigurationError,
    Key,
    ModelCollection,
    Ommi,
    OperationalError,
    ReferenceTo,
    TimezoneAware,
    UnsupportedFeature,
    ommi_model,
)
from ommi_dictstore import DictStoreDriver

models = ModelCollection("dictstore_tests")


@ommi_model(collection=models)
@dataclass
class Sample:
    """One field of every storage type."""

    name: Annotated[str, Key]
    count: int | None = None
    ratio: float | None = None
    flag: bool | None = None
    price: decimal.Decimal | None = None
    blob: bytes | None = None
    uid: uuid.UUID | None = None
    day: dt.date | None = None
    moment: dt.datetime | None = None
    instant: Annotated[dt.datetime | None, TimezoneAware] = None


@ommi_model(collection=models)
@dataclass
class Note:
    """A row with a generated key that references a Sample."""

    text: str
    sample: Annotated[str, ReferenceTo(Sample.name)]
    id: int | None = None


EVERY_TYPE = Sample(
    name="every type",
    count=-(2**63),
    ratio=0.1,
    flag=False,
    price=decimal.Decimal("-1234567890.123456789012345678"),
    blob=b"\x00\xff binary",
    uid=uuid.UUID("12345678-1234-5678-1234-567812345678"),
    day=dt.date(1999, 12, 31),
    moment=dt.datetime(2024, 2, 29, 23, 59, 59, 999999),
    instant=dt.datetime(2024, 6, 1, 12, 0, 0, 1, tzinfo=dt.UTC),
)


# -- settings --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "path", "batch_size"),
    [
        (None, None, 500),
        ("dictstore://", None, 500),
        ("dictstore:///data/app.json", "data/app.json", 500),
        ("dictstore:////srv/app.json?batch_size=7", "/srv/app.json", 7),
        ("app.json", "app.json", 500),
        (Path("dir") / "app.json", str(Path("dir") / "app.json"), 500),
        ({"path": "m.json", "batch_size": 3}, "m.json", 3),
    ],
)
def test_settings_forms(given: object, path: str | None, batch_size: int) -> None:
    """URLs, paths and mappings all give the same settings; nothing is opened."""
    driver = DictStoreDriver.connect(given)  # type: ignore[arg-type]
    assert driver.settings.path == path
    assert driver.settings.batch_size == batch_size == driver.default_batch_size


@pytest.mark.parametrize(
    ("given", "options", "message"),
    [
        ("dictstore://host/app.json", {}, "names a host"),
        ("dictstore:///a.json?colour=red", {}, "unknown dictstore URL setting 'colour'"),
        ({"path": "a.json", "timeout": 3}, {}, "unknown dictstore settings ['timeout']"),
        ("a.json", {"batch_size": 0}, "batch_size must be an int >= 1"),
        (42, {}, "takes a dictstore:// URL"),
    ],
)
def test_settings_mistakes_are_configuration_errors(given: object, options: dict[str, object], message: str) -> None:
    """A wrong setting fails at ``connect``, saying what is accepted."""
    with pytest.raises(ConfigurationError) as info:
        DictStoreDriver.connect(given, **options)  # type: ignore[arg-type]
    assert message in str(info.value)


# -- registration ----------------------------------------------------------------------


def test_entry_point_registers_the_driver() -> None:
    """The ``ommi`` entry point makes ``dictstore://`` URLs work and ``ommi drivers`` list the driver."""
    info = next(d for d in ommi.drivers() if d.name == "dictstore")
    assert info.schemes == ("dictstore",)
    assert info.capabilities is not None
    assert set(info.capabilities.absent()) == {
        "transactions",
        "transaction_isolation",
        "related_conditions",
        "foreign_keys",
        "migrations",  # absent unless declared: it needs the driver's migration methods
        "inspection",  # likewise: it needs Driver.inspect_schema
        "constraints",  # likewise: it needs Unique/Index made, drift-checked and enforced
        "upsert",  # likewise: it needs Operations.upsert
        "raw_sql",  # likewise: it needs Operations.raw (a database with a statement language)
        "update_expressions",  # likewise: it needs update() to compute Arithmetic values per row
        "case_insensitive_text",  # likewise: it needs the operators Op.ICONTAINS, Op.ISTARTSWITH, Op.IENDSWITH
        "json_fields",  # likewise: it needs StorageType.JSON stored and JSON path conditions evaluated
        "savepoints",  # no transactions, so none of what needs one
        "isolation_levels",
        "row_locks",
        "timeouts",
    }
    db = ommi.connect("dictstore://")
    assert isinstance(db.driver, DictStoreDriver)
    assert db.driver.description == "dictstore (in memory)"


# -- the file ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_file_survives_a_restart(tmp_path: Path) -> None:
    """Rows written by one driver are read back from the JSON file by a later one, every type exact."""
    path = tmp_path / "restart.json"
    async with ommi.connect(f"dictstore:///{path}") as db:
        await db.use_models(models)
        await db.add(EVERY_TYPE, Sample("nulls")).or_raise()
        first = await db.add(Note("first", "every type")).or_raise()
    assert first.id == 1
    document = json.loads(path.read_text(encoding="utf-8"))
    assert set(document["tables"]) == {"Sample", "Note"}

    async with Ommi(DictStoreDriver.connect(path)) as db:
        await db.use_models(models)  # the stored tables match the models: kept as they are
        assert await db.find(Sample.name == "every type").one.or_raise() == EVERY_TYPE
        assert await db.find(Sample.name == "nulls").one.or_raise() == Sample("nulls")
        second = await db.add(Note("second", "nulls")).or_raise()
    assert second.id == 2, "the key counter is saved with the table"


@pytest.mark.asyncio
async def test_memory_databases_are_private() -> None:
    """Each in-memory driver is a database of its own."""
    async with Ommi(DictStoreDriver.connect()) as one, Ommi(DictStoreDriver.connect()) as two:
        await one.use_models(models)
        await two.use_models(models)
        await one.add(Sample("only here")).or_raise()
        assert await one.find(Sample).count.or_raise() == 1
        assert await two.find(Sample).count.or_raise() == 0


@pytest.mark.asyncio
async def test_unreadable_file_is_an_operational_error(tmp_path: Path) -> None:
    """A file that is not a dictstore database fails on open, naming it, with the parse error chained."""
    path = tmp_path / "broken.json"
    path.write_text("{not json", encoding="utf-8")
    driver = DictStoreDriver.connect(path)
    with pytest.raises(OperationalError) as info:
        await driver.open()
    assert "broken.json" in str(info.value)
    assert info.value.__cause__ is not None
    await driver.close()


# -- what the driver declares absent ---------------------------------------------------


@pytest.mark.asyncio
async def test_related_conditions_are_refused_naming_the_capability() -> None:
    """A condition on another model raises UnsupportedFeature instead of a wrong answer."""
    async with Ommi(DictStoreDriver.connect()) as db:
        await db.use_models(models)
        await db.add(Sample("s")).or_raise()
        await db.add(Note("n", "s")).or_raise()
        with pytest.raises(UnsupportedFeature, match="related_conditions"):
            await db.find(Note.sample == "s", Sample.count == 1).count.or_raise()
        assert await db.find(Note.sample == "s").count.or_raise() == 1


@pytest.mark.asyncio
async def test_transactions_are_refused_naming_the_capability() -> None:
    """``db.transaction()`` raises UnsupportedFeature (core checks the declared capability)."""
    async with Ommi(DictStoreDriver.connect()) as db:
        with pytest.raises(UnsupportedFeature, match="transactions"):
            db.transaction()
        with pytest.raises(UnsupportedFeature, match="transactions"):
            await db.driver.begin()
