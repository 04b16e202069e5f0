"""``Unique`` and ``Index``: declaring them, their stored names, and the migration operations that follow them."""

# mypy: disable-error-code="arg-type"

from __future__ import annotations

import pickle
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, ClassVar

import ommi
import pytest
from ommi import Index, ModelCollection, ModelDefinitionError, StoreAs, Unique, ommi_model
from ommi.errors import MigrationError
from ommi.migrations import (
    AddField,
    AddIndex,
    AddUnique,
    CreateModel,
    FieldSpec,
    IndexSpec,
    RemoveField,
    RemoveIndex,
    RemoveUnique,
    SchemaState,
    diff,
)
from ommi.migrations.files import load, render
from ommi.models import get_schema
from ommi.models.constraints import MAX_NAME_BYTES, constraint_name
from ommi.sql import SQLCompiler
from ommi.sql.dialect import Dialect


def _model(collection: ModelCollection, **options: object) -> type:
    @ommi_model(collection=collection, name="person", **options)  # type: ignore[call-overload]
    @dataclass
    class Person:
        first: str
        last: str | None
        email: Annotated[str | None, Unique | StoreAs("mail")] = None
        created: Annotated[datetime | None, Index] = None
        id: int | None = None

    return Person


def test_markers_and_model_constraints_resolve_with_stored_names() -> None:
    """Field markers come first in field order, then ``constraints=``; names are computed unless given."""
    person = _model(ModelCollection("c1"), constraints=[Unique("first", "last"), Index("last", "first", name="ix_x")])
    schema = get_schema(person)
    assert [(c.columns, c.unique) for c in schema.constraints] == [
        (("mail",), True),
        (("created",), False),
        (("first", "last"), True),
        (("last", "first"), False),
    ]
    assert schema.constraints[0].name == constraint_name("person", ["mail"], unique=True)
    assert schema.constraints[3].name == "ix_x"
    assert schema.unique_constraint([person.last, person.first]) is schema.constraints[2]  # type: ignore[attr-defined]
    assert schema.unique_constraint([person.first]) is None  # type: ignore[attr-defined]


def test_constraint_names_are_deterministic_short_and_apart_from_reference_indexes() -> None:
    """Same input, same name; at most 63 bytes even for long UTF-8 names; never ``ix_<table>_<column>``."""
    assert constraint_name("t", ["a"], unique=True) == constraint_name("t", ["a"], unique=True)
    assert constraint_name("t", ["a"], unique=True) != constraint_name("t", ["a"], unique=False)
    assert constraint_name("t", ["a_b"], unique=False) != constraint_name("t", ["a", "b"], unique=False)
    long = constraint_name("é" * 70, ["ü" * 40, "x"], unique=True)
    assert len(long.encode()) <= MAX_NAME_BYTES
    long.encode().decode()  # never a cut UTF-8 sequence
    schema = get_schema(_model(ModelCollection("c2")))
    reference_style = {SQLCompiler.index_name(schema, f) for f in schema.fields}
    assert not reference_style & {c.name for c in schema.constraints}


@pytest.mark.parametrize(
    ("constraints", "message"),
    [
        ([Unique("nope")], "has no field 'nope'"),
        ([Unique("first", "first")], "names 'first' twice"),
        ([], "declares nothing"),
        ([Unique()], "names no field"),
        ([Unique("id")], "repeats the key"),
        ([Unique("email")], "again"),
        ([Index("email")], "indexed already"),
        ([Unique], "called with field names"),
        ([Unique("first", name="x" * 64)], "longer than 63 bytes"),
        ([Unique("first", name="")], "non-empty"),
        ([Unique("first", name="same"), Index("last", name="same")], "named 'same'"),
        ("first", "takes a list"),
        ([("first",)], "takes Unique"),
    ],
)
def test_bad_constraints_are_refused_at_decoration(constraints: object, message: str) -> None:
    """Each mistake is a ``ModelDefinitionError`` naming the model, raised by ``@ommi_model`` itself."""
    with pytest.raises(ModelDefinitionError, match=message) as caught:
        _model(ModelCollection("bad"), constraints=constraints)
    assert "Person" in str(caught.value)


def test_marker_on_the_single_key_is_refused() -> None:
    """``Key | Unique`` on the only key repeats the key's own uniqueness."""
    from ommi import Key

    with pytest.raises(ModelDefinitionError, match="repeats the key"):

        @ommi_model(collection=ModelCollection("k"))
        @dataclass
        class Thing:
            code: Annotated[str, Key | Unique]


def test_markers_pickle_as_themselves() -> None:
    """The markers survive pickling (models are shipped between xdist workers)."""
    assert pickle.loads(pickle.dumps(Unique)) is Unique
    assert pickle.loads(pickle.dumps(Index)) is Index
    assert repr(Unique("a", "b", name="n")) == "Unique('a', 'b', name='n')"


def _states() -> tuple[SchemaState, SchemaState]:
    old = SchemaState(
        [
            CreateModel("t", [FieldSpec("id", "int", key=True, generated=True), FieldSpec("gone", "str")])
            .state_forwards(SchemaState())
            .model("t")
        ]
    )
    old = old.apply(AddIndex("t", "ix_gone", ["gone"]))
    new = SchemaState(
        [
            CreateModel(
                "t",
                [FieldSpec("id", "int", key=True, generated=True), FieldSpec("email", "str", nullable=True)],
                [IndexSpec("uq_email", ["email"], unique=True)],
            )
            .state_forwards(SchemaState())
            .model("t")
        ]
    )
    return old, new


def test_diff_orders_index_removals_before_fields_and_additions_after() -> None:
    """Indexes go before the fields they name are removed, and come after the fields they name are added."""
    old, new = _states()
    operations = diff(old, new)
    kinds = [type(op).__name__ for op in operations]
    assert kinds == ["RemoveIndex", "RemoveField", "AddField", "AddUnique"]
    state = old
    for operation in operations:
        state = state.apply(operation)
    assert state == new
    back = [op.inverse() for op in reversed(operations)]
    assert [type(op).__name__ if op else None for op in back] == ["RemoveUnique", "RemoveField", None, "AddIndex"]


def test_states_refuse_index_operations_that_do_not_fit() -> None:
    """A field still indexed cannot be removed; an index needs its fields; names are unique per model."""
    old, _ = _states()
    with pytest.raises(MigrationError, match="still name it"):
        old.apply(RemoveField("t", FieldSpec("gone", "str")))
    with pytest.raises(MigrationError, match="no field 'nope'"):
        old.apply(AddUnique("t", "uq", ["nope"]))
    with pytest.raises(MigrationError, match="already"):
        old.apply(AddIndex("t", "ix_gone", ["id"]))
    with pytest.raises(MigrationError, match="at this point"):
        old.apply(RemoveUnique("t", "ix_gone", ["gone"]))
    with pytest.raises(MigrationError, match="non-empty list"):
        old.apply(AddIndex("t", "ix_none", []))
    assert old.apply(RemoveIndex("t", "ix_gone", ["gone"])).model("t").indexes == ()


def test_files_round_trip_and_old_files_keep_their_checksum(tmp_path: Path) -> None:
    """Written operations load back equal; a ``CreateModel`` without indexes is written as before (same checksum)."""
    _, new = _states()
    operations = [
        *diff(SchemaState(), new),
        AddField("t", FieldSpec("x", "int", nullable=True)),
        AddIndex("t", "ix_x", ["x"]),
    ]
    (tmp_path / "0001_initial.py").write_text(render("0001_initial", None, operations, summary="s"), encoding="utf-8")
    (loaded,) = load(tmp_path)
    assert list(loaded.operations) == operations
    plain = CreateModel("t", [FieldSpec("id", "int", key=True, generated=True)])
    # Exactly the text Ommi wrote before indexes existed: files applied then keep their checksum.
    assert (
        plain.source()
        == 'CreateModel(\n    "t",\n    [\n        FieldSpec("id", "int", key=True, generated=True),\n    ],\n)'
    )
    assert loaded.checksum == load(tmp_path)[0].checksum


def test_sql_statements_for_constraints() -> None:
    """The shared compiler spells ``CREATE [UNIQUE] INDEX IF NOT EXISTS`` and ``DROP INDEX`` with quoted names.

    ``IF NOT EXISTS``: a migration's ``CreateModel`` adopting a table made by other tools may find it there.
    """
    schema = get_schema(_model(ModelCollection("sql"), constraints=[Unique("first", "last")]))
    compiler = SQLCompiler(Dialect())
    statements = compiler.constraint_statements(schema)
    assert statements[0].startswith('CREATE UNIQUE INDEX IF NOT EXISTS "uq_person_mail_')
    assert statements[1].startswith('CREATE INDEX IF NOT EXISTS "ix_person_created_')
    assert statements[2].endswith('("first", "last")')
    assert compiler.drop_constraint(schema, schema.constraints[0]).startswith('DROP INDEX "uq_person_mail_')


def test_a_relation_is_not_a_constraint_field() -> None:
    """Naming a lazy relation in ``constraints=`` is refused, saying it is a relation."""
    relations = ModelCollection("rel")

    @ommi_model(collection=relations)
    @dataclass
    class Shelf:
        label: str
        id: int | None = None

    with pytest.raises(ModelDefinitionError, match="lazy relation"):

        @ommi_model(collection=relations, constraints=[Unique("label", "shelf")])
        @dataclass
        class Book:
            label: str
            shelf_id: Annotated[int, ommi.ReferenceTo(Shelf)]
            id: int | None = None

            shelf: ClassVar[ommi.LazyOne[Shelf]]


async def test_a_driver_without_the_capability_refuses_constrained_models() -> None:
    """A driver that would ignore ``Unique`` (capability ``constraints`` absent) never gets the model: refused
    by ``use_models``, naming the capability."""
    import dataclasses as _dataclasses

    from ommi import Ommi
    from ommi.errors import UnsupportedFeature
    from ommi_testkit.reference import ReferenceDriver, ReferenceStore

    collection = ModelCollection("no constraints capability")

    @ommi_model(collection=collection, name="nc_people")
    @dataclass
    class Person:
        email: Annotated[str, Unique]
        id: int | None = None

    driver = ReferenceDriver.connect(store=ReferenceStore())
    driver.capabilities = _dataclasses.replace(driver.capabilities, constraints=False)
    async with Ommi(driver) as db:
        with pytest.raises(UnsupportedFeature, match="'constraints' capability"):
            await db.use_models(collection)
