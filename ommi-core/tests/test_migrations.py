"""ommi.migrations without a database: states, operations, diff, migration files and ``make``.

The driver-neutral behaviour against databases is the testkit's
``MigrationTests`` (run on the reference driver and SQLite); these tests pin
what needs no database.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import textwrap
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import ommi
import pytest
from ommi import ModelCollection, ReferenceTo, StoreAs, TimezoneAware, ommi_model
from ommi.errors import MigrationError
from ommi.migrations import (
    AddField,
    ChangeType,
    CreateModel,
    DropModel,
    FieldSpec,
    MigrationStep,
    ModelState,
    RemoveField,
    RenameField,
    SchemaState,
    SetDefault,
    apply,
    diff,
    load,
    make,
    parse_rename,
    replay,
)
from ommi.models import get_schema
from ommi.sql import Dialect, SQLCompiler
from ommi.sql.migrate import MigrationSQL, show


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


shop_v1 = ModelCollection("test_migrations shop v1")
shop_v2 = ModelCollection("test_migrations shop v2")


@ommi_model(collection=shop_v1, name="customers")
@dataclass
class Customer:
    name: str
    id: int = ommi.generated_key()


@ommi_model(collection=shop_v1, name="orders")
@dataclass
class Order:
    customer: Annotated[int, ReferenceTo(Customer)]
    total: int
    id: int = ommi.generated_key()


@ommi_model(collection=shop_v2, name="customers")
@dataclass
class Customer2:
    name: str
    joined: Annotated[datetime.datetime, TimezoneAware] = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    color: Color = Color.BLUE
    balance: decimal.Decimal = decimal.Decimal("0.00")
    token: uuid.UUID = uuid.UUID(int=7)  # noqa: RUF009 - immutable
    since: datetime.date = datetime.date(2020, 1, 2)
    tags: str | None = None
    seen: Annotated[int, StoreAs("seen count")] = 0
    id: int = ommi.generated_key()


@ommi_model(collection=shop_v2, name="orders")
@dataclass
class Order2:
    customer: Annotated[int, ReferenceTo(Customer2)]
    total: decimal.Decimal
    id: int = ommi.generated_key()


shop_v3 = ModelCollection("test_migrations shop v3")


@ommi_model(collection=shop_v3, name="customers")
@dataclass
class Customer3:
    name: str
    id: int = ommi.generated_key()


@ommi_model(collection=shop_v3, name="orders")
@dataclass
class Order3:
    customer: Annotated[int, ReferenceTo(Customer3)]
    total: decimal.Decimal
    id: int = ommi.generated_key()


# -- state -------------------------------------------------------------------------------


def test_state_from_models_describes_stored_fields() -> None:
    """Type tags, defaults as canonical values, StoreAs names, references and the generated key come from the models."""
    state = SchemaState.from_models(shop_v2)
    customers = state.model("customers")
    specs = {f.name: f for f in customers.fields}
    assert specs["id"] == FieldSpec("id", "int", key=True, generated=True)
    assert specs["color"] == FieldSpec("color", "str", default="blue")
    assert specs["joined"].type == "datetime_tz" and specs["joined"].default.tzinfo is not None
    assert specs["balance"].default == decimal.Decimal("0.00")
    assert specs["seen count"] == FieldSpec("seen count", "int", default=0)
    assert specs["tags"] == FieldSpec("tags", "str", nullable=True)
    assert state.model("orders").field("customer") == FieldSpec("customer", "int", reference="customers")


def test_state_equality_ignores_field_order() -> None:
    """Two states with the same fields in another order are equal: order is not part of a stored schema."""
    a, b = FieldSpec("a", "int"), FieldSpec("id", "int", key=True, generated=True)
    assert SchemaState([ModelState("t", (a, b))]) == SchemaState([ModelState("t", (b, a))])
    assert SchemaState([ModelState("t", (a, b))]) != SchemaState([ModelState("t", (b,))])


@pytest.mark.parametrize(
    ("make_spec", "message"),
    [
        (lambda: FieldSpec("x", "integer"), "unknown type tag"),
        (lambda: FieldSpec("x", "int", key=True, nullable=True), "cannot be nullable"),
        (lambda: FieldSpec("x", "str", generated=True), "only an int key"),
        (lambda: FieldSpec("x", "int", default="zero"), "not a int value"),
        (lambda: FieldSpec("", "int"), "non-empty name"),
        (lambda: ModelState("t", (FieldSpec("a", "str"),)), "no field is a key"),
        (lambda: ModelState("t", (FieldSpec("id", "int", key=True),)), "generated"),
        (lambda: ModelState("t", (FieldSpec("a", "str", key=True), FieldSpec("a", "int"))), "several fields"),
    ],
)
def test_specs_refuse_contradictions(make_spec: object, message: str) -> None:
    """A field or model description that contradicts itself fails when built, saying why."""
    with pytest.raises(MigrationError, match=message):
        make_spec()  # type: ignore[operator]


def test_state_schema_is_a_model_of_its_own() -> None:
    """``state.schema(name)`` maps like the application's model, in a collection that is not the global one."""
    state = SchemaState.from_models(shop_v2)
    historical = state.schema("customers")
    original = get_schema(Customer2)
    assert [(f.column, f.storage, f.nullable, f.key, f.auto) for f in historical.fields] == [
        (f.column, f.storage, f.nullable, f.key, f.auto) for f in original.fields
    ]
    assert historical.collection is not ommi.get_global_collection()
    assert state.schema("orders").by_column["customer"].reference is historical.key[0]
    assert SQLCompiler(Dialect()).create_table(historical) == SQLCompiler(Dialect()).create_table(original)


def test_history_table_name_is_refused() -> None:
    """A model stored as ``ommi_migrations`` never enters a state."""
    hostile = ModelCollection("test_migrations hostile")

    @ommi_model(collection=hostile, name="Ommi_Migrations")
    @dataclass
    class Impostor:
        id: str

    with pytest.raises(MigrationError, match="ommi_migrations"):
        SchemaState.from_models(hostile)
    with pytest.raises(MigrationError, match="ommi_migrations"):
        SchemaState().apply(CreateModel("ommi_migrations", (FieldSpec("id", "str", key=True),)))


def test_reference_outside_the_models_is_refused() -> None:
    """A state holds every model its references need."""
    with pytest.raises(MigrationError, match="not among the models"):
        SchemaState.from_models([Order])


# -- operations and diff ---------------------------------------------------------------------


def test_diff_from_nothing_creates_referenced_models_first() -> None:
    """The first migration creates every model, referenced before referencing, whatever the collection's order."""
    operations = diff(SchemaState(), SchemaState.from_models([Order, Customer]))
    assert [type(op).__name__ for op in operations] == ["CreateModel", "CreateModel"]
    assert [op.model for op in operations] == ["customers", "orders"]


def test_diff_lists_each_change() -> None:
    """Added fields (with defaults), a converted type, and nothing for what did not change."""
    operations = diff(SchemaState.from_models(shop_v1), SchemaState.from_models(shop_v2))
    described = [op.describe() for op in operations]
    assert "add field customers.color (str, default 'blue')" in described
    assert "change field orders.total from int to decimal" in described
    assert all(not op.destructive for op in operations)
    assert diff(SchemaState.from_models(shop_v2), SchemaState.from_models(shop_v2)) == []


def test_diff_removal_and_rename() -> None:
    """A field gone is a destructive removal; said as a rename, it is a rename that keeps the values."""
    old = SchemaState([ModelState("t", (FieldSpec("a", "str"), FieldSpec("id", "int", key=True, generated=True)))])
    new = SchemaState([ModelState("t", (FieldSpec("b", "str"), FieldSpec("id", "int", key=True, generated=True)))])
    with pytest.raises(MigrationError, match=r"renames=\['t\.a=b'\]"):
        diff(old, new)  # b is required without a default: refused, with the rename hinted
    assert diff(old, new, renames=["t.a=b"]) == [RenameField("t", "a", "b")]
    assert parse_rename("Model.old=new") == ("Model", "old", "new")
    with pytest.raises(MigrationError, match=r"Model\.old_field=new_field"):
        parse_rename("old=new")


def test_diff_refuses_what_cannot_be_migrated() -> None:
    """A type without conversion, or a key change, is refused with what to do instead."""
    key = FieldSpec("id", "int", key=True, generated=True)
    old = SchemaState([ModelState("t", (FieldSpec("a", "str"), key))])
    with pytest.raises(MigrationError, match="run\\(db\\)"):
        diff(old, SchemaState([ModelState("t", (FieldSpec("a", "bytes"), key))]))
    with pytest.raises(MigrationError, match="key cannot change"):
        diff(old, SchemaState([ModelState("t", (FieldSpec("a", "str", key=True), FieldSpec("id", "int")))]))


def test_operations_know_destructive_and_inverse() -> None:
    """Each operation says whether it drops or narrows data, and what undoes it."""
    spec = FieldSpec("a", "str", nullable=True)
    required = FieldSpec("a", "str", default="x")
    fields = (FieldSpec("id", "int", key=True, generated=True),)
    assert not AddField("t", spec).destructive and AddField("t", spec).inverse() == RemoveField("t", spec)
    assert RemoveField("t", spec).destructive and RemoveField("t", spec).inverse() == AddField("t", spec)
    assert RemoveField("t", FieldSpec("a", "str")).inverse() is None  # required, no default: cannot come back
    assert DropModel("t", fields).destructive and DropModel("t", fields).inverse() == CreateModel("t", fields)
    assert RenameField("t", "a", "b").inverse() == RenameField("t", "b", "a")
    assert ChangeType("t", spec, required).destructive  # None values are overwritten
    assert not ChangeType("t", required, spec).destructive
    assert ChangeType("t", FieldSpec("a", "int"), FieldSpec("a", "float")).destructive  # big ints lose digits
    assert ChangeType("t", FieldSpec("a", "int"), FieldSpec("a", "decimal")).inverse() is None
    assert SetDefault("t", "a", None, 1).inverse() == SetDefault("t", "a", 1, None)


def test_replayed_operations_check_the_state() -> None:
    """An operation that does not fit the state it meets is refused (a hand-edited file, out of order)."""
    key = FieldSpec("id", "int", key=True, generated=True)
    state = SchemaState().apply(CreateModel("t", (key,)))
    with pytest.raises(MigrationError, match="no field 'a'"):
        state.apply(RemoveField("t", FieldSpec("a", "str", nullable=True)))
    with pytest.raises(MigrationError, match="exists already"):
        state.apply(CreateModel("t", (key,)))
    with pytest.raises(MigrationError, match="not a model"):
        state.apply(AddField("t", FieldSpec("r", "int", nullable=True, reference="nowhere")))
    referencing = state.apply(CreateModel("u", (FieldSpec("t", "int", reference="t"), key)))
    with pytest.raises(MigrationError, match="still reference it"):
        referencing.apply(DropModel("t", (key,)))


# -- files and make --------------------------------------------------------------------------


def test_make_writes_readable_files_that_replay(tmp_path: Path) -> None:
    """``make`` numbers the files, chains them, writes every literal readably, and replays into the models' state."""
    first = make(shop_v1, tmp_path)
    second = make(shop_v2, tmp_path, allow_destructive=True)
    assert first is not None and second is not None
    assert (first.name, second.name[:5]) == ("0001_initial.py", "0002_")
    text = second.read_text(encoding="utf-8")
    assert 'parent = "0001_initial"' in text
    assert 'default=decimal.Decimal("0.00")' in text
    assert 'default=datetime.datetime.fromisoformat("2020-01-01T00:00:00+00:00")' in text
    assert 'default=uuid.UUID("00000000-0000-0000-0000-000000000007")' in text
    assert "import datetime\nimport decimal\nimport uuid\n" in text
    compile(text, str(second), "exec")
    migrations = load(tmp_path)
    assert [m.id for m in migrations] == ["0001_initial", second.stem]
    assert replay(migrations)[-1] == SchemaState.from_models(shop_v2)
    assert make(shop_v2, tmp_path) is None


def test_make_refuses_destructive_changes(tmp_path: Path) -> None:
    """Dropping or narrowing data needs ``allow_destructive``; the message names each operation and the flag."""
    make(shop_v2, tmp_path)
    with pytest.raises(MigrationError) as refused:
        make(shop_v3, tmp_path)
    message = str(refused.value)
    assert "remove field customers.color" in message and "remove field customers.tags" in message
    assert "allow_destructive=True" in message and "--allow-destructive" in message
    assert len(list(tmp_path.glob("*.py"))) == 1
    assert make(shop_v3, tmp_path, allow_destructive=True, name="slim") is not None
    assert (tmp_path / "0002_slim.py").exists()
    with pytest.raises(MigrationError, match="needs a letter or a digit"):
        make(shop_v2, tmp_path, name="--")
    assert len(list(tmp_path.glob("*.py"))) == 2
    # A name is a message, as Alembic's -m is: spaces and punctuation become one _.
    assert make(shop_v2, tmp_path, name="Colour & tags, back") == tmp_path / "0003_Colour_tags_back.py"


def test_checksum_covers_operations_not_formatting(tmp_path: Path) -> None:
    """Reformatting a file keeps its checksum; changing an operation changes it."""
    path = make(shop_v1, tmp_path)
    assert path is not None
    (before,) = load(tmp_path)
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("\n    ", "\n        ").replace('"', "'"), encoding="utf-8")
    assert load(tmp_path)[0].checksum == before.checksum
    path.write_text(text.replace('FieldSpec("total", "int")', 'FieldSpec("total", "float")'), encoding="utf-8")
    assert load(tmp_path)[0].checksum != before.checksum


def _write(directory: Path, name: str, body: str) -> None:
    directory.mkdir(exist_ok=True)
    (directory / name).write_text(textwrap.dedent(body), encoding="utf-8")


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"notes.py": ""}, r"notes\.py: migration files are named NNNN_name\.py"),
        ({"0001_a.py": "id = '0001_a'\n"}, r"parent, operations missing"),
        ({"0001_a.py": "id = 'x'\nparent = None\noperations = [1]\n"}, "list of ommi.migrations operations"),
        ({"0001_a.py": "id = 'zero'\nparent = None\noperations = []\n"}, "other than 'zero'"),
        ({"0001_a.py": "raise ValueError('boom')\n"}, r"0001_a\.py fails when imported: ValueError: boom"),
        ({"0001_a.py": "id = 'a'\nparent = None\noperations = []\ndef run(db): pass\n"}, "async def run"),
        (
            {
                "0001_a.py": "id = 'a'\nparent = None\noperations = []\n",
                "0002_b.py": "id = 'a'\nparent = 'a'\noperations = []\n",
            },
            "both have the id 'a'",
        ),
        (
            {
                "0001_a.py": "id = 'a'\nparent = None\noperations = []\n",
                "0002_b.py": "id = 'b'\nparent = 'x'\noperations = []\n",
            },
            r"0002_b\.py: its parent 'x' is no migration",
        ),
        (
            {
                "0001_a.py": "id = 'a'\nparent = None\noperations = []\n",
                "0002_b.py": "id = 'b'\nparent = 'a'\noperations = []\n",
                "0002_c.py": "id = 'c'\nparent = 'a'\noperations = []\n",
            },
            r"two heads: 0002_b\.py and 0002_c\.py both follow the migration 'a'",
        ),
        (
            {
                "0001_a.py": "id = 'a'\nparent = None\noperations = []\n",
                "0002_b.py": "id = 'b'\nparent = 'c'\noperations = []\n",
                "0003_c.py": "id = 'c'\nparent = 'b'\noperations = []\n",
            },
            "a cycle",
        ),
    ],
)
def test_broken_directories_are_refused(tmp_path: Path, files: dict[str, str], message: str) -> None:
    """Each way a migrations directory can be broken is an error naming the file(s)."""
    for name, body in files.items():
        _write(tmp_path, name, body)
    with pytest.raises(MigrationError, match=message):
        load(tmp_path)


def test_helpers_and_missing_directories(tmp_path: Path) -> None:
    """Files starting with _ are left alone; a missing directory has no migrations; a file is not a directory."""
    _write(tmp_path, "_helpers.py", "raise RuntimeError('never imported')\n")
    assert load(tmp_path) == []
    assert load(tmp_path / "absent") == []
    with pytest.raises(MigrationError, match="not a directory"):
        load(tmp_path / "_helpers.py")


# -- the generic SQL of migrations (PostgreSQL's starting point) ------------------------------


def _statements(operation: object, before: SchemaState) -> list[str]:
    after = before.apply(operation)  # type: ignore[arg-type]
    step = MigrationStep("m", 0, operation, before, after)  # type: ignore[arg-type]
    return [show(s) for s in MigrationSQL(SQLCompiler(Dialect())).statements(step)]


def test_generic_sql_for_each_operation() -> None:
    """The standard SQL the base class writes: ALTER TABLE forms, defaults kept as column DEFAULTs."""
    key = FieldSpec("id", "int", key=True, generated=True)
    state = SchemaState([ModelState("t", (FieldSpec("a", "str", nullable=True), key))])
    assert _statements(AddField("t", FieldSpec("n", "int", default=0)), state) == [
        'ALTER TABLE "t" ADD COLUMN "n" BIGINT NOT NULL DEFAULT 0',
    ]
    assert _statements(AddField("t", FieldSpec("s", "str", default="it's")), state) == [
        "ALTER TABLE \"t\" ADD COLUMN \"s\" TEXT NOT NULL DEFAULT 'it''s'",
    ]
    day = datetime.date(2026, 1, 2)
    assert _statements(AddField("t", FieldSpec("d", "date", default=day)), state)[0].endswith("DEFAULT '2026-01-02'")
    assert _statements(AddField("t", FieldSpec("m", "decimal", default=decimal.Decimal("1.50"))), state)[0].endswith(
        "DEFAULT 1.50"
    )
    assert _statements(AddField("t", FieldSpec("o", "str", nullable=True)), state) == [
        'ALTER TABLE "t" ADD COLUMN "o" TEXT'
    ]
    assert _statements(RenameField("t", "a", "b"), state) == ['ALTER TABLE "t" RENAME COLUMN "a" TO "b"']
    assert _statements(RemoveField("t", FieldSpec("a", "str", nullable=True)), state) == [
        'ALTER TABLE "t" DROP COLUMN "a"'
    ]
    assert _statements(
        ChangeType("t", FieldSpec("a", "str", nullable=True), FieldSpec("a", "str", default="?")), state
    ) == [
        'UPDATE "t" SET "a" = ? WHERE "a" IS NULL  -- parameters: [\'?\']',
        'ALTER TABLE "t" ALTER COLUMN "a" SET NOT NULL',
        'ALTER TABLE "t" ALTER COLUMN "a" SET DEFAULT \'?\'',
    ]
    assert _statements(SetDefault("t", "a", None, "x"), state) == ['ALTER TABLE "t" ALTER COLUMN "a" SET DEFAULT \'x\'']
    defaulted = state.apply(SetDefault("t", "a", None, "x"))
    assert _statements(SetDefault("t", "a", "x", None), defaulted) == ['ALTER TABLE "t" ALTER COLUMN "a" DROP DEFAULT']
    assert _statements(DropModel("t", state.model("t").fields), state) == ['DROP TABLE IF EXISTS "t"']


weights_v1 = ModelCollection("weights v1")
weights_v2 = ModelCollection("weights v2")


@ommi_model(collection=weights_v1, name="weights")
@dataclass
class WeightV1:
    weight: int | None = None
    id: int = ommi.generated_key()


@ommi_model(collection=weights_v2, name="weights")
@dataclass
class WeightV2:
    weight: decimal.Decimal = decimal.Decimal("0")
    id: int = ommi.generated_key()


async def test_a_field_changing_type_and_becoming_required_in_one_step(tmp_path: Path) -> None:
    """int | None -> Decimal with a default: one ChangeType that converts and fills the stored None values.

    ``make`` compared the old and new fields by giving the old one the new default,
    which a FieldSpec of the old type refuses (a Decimal default on an int field).
    """
    directory = tmp_path / "migrations"
    make(weights_v1, directory)
    async with ommi.connect(f"sqlite:///{tmp_path / 'app.db'}") as db:
        await apply(db, directory)
        await db.add(WeightV1(None), WeightV1(3)).or_raise()
    with pytest.raises(MigrationError, match="allow_destructive"):
        make(weights_v2, directory)  # the stored None values are replaced: destructive
    path = make(weights_v2, directory, allow_destructive=True)
    assert path is not None and "ChangeType(" in path.read_text()
    async with ommi.connect(f"sqlite:///{tmp_path / 'app.db'}") as db:
        await apply(db, directory)
        await db.use_models(weights_v2)
        rows = await db.find(WeightV2).sort(ommi.asc(WeightV2.id)).all.to_list()
    assert [row.weight for row in rows] == [decimal.Decimal("0"), decimal.Decimal("3")]
