"""Results are typed, and user code type-checks, under ``mypy --strict`` and pyright (no plugin for pyright).

A small program using the typed spellings (see the "Type checking" guide) is
checked by mypy, through ``mypy.api`` with the ``ommi.mypy`` plugin, and by
pyright, run as a command (it is not a dependency of the workspace: the test
skips with one line when it is not on ``PATH``; ``nox -s typecheck_docs``
installs it and runs this file). Each ``reveal_type`` must show the expected
type and a misspelled attribute of a fetched model must be reported.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mypy import api as mypy_api

PROGRAM = """
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

import ommi


@ommi.ommi_model
@dataclass
class Post:
    meta: dict[str, Any]
    tags: list[str]
    id: int | None = None


@ommi.ommi_model
@dataclass
class Author:
    name: str
    id: int | None = None

    books: ClassVar[ommi.LazyMany[Book]]


@ommi.ommi_model
@dataclass
class Book:
    title: str
    year: int
    author_id: int
    id: int | None = None

    author: ClassVar[ommi.LazyOne[Author]]


@ommi.ommi_model(constraints=[ommi.Unique("name", "city"), ommi.Index("city", "joined", name="ix_by_city")])
@dataclass
class Member:
    name: str
    city: str
    email: Annotated[str, ommi.Unique]
    joined: Annotated[int, ommi.Index | ommi.StoreAs("joined_on")]
    id: int | None = None


@ommi.ommi_model
@dataclass
class Note(ommi.ModelMethods):
    text: str
    id: int = ommi.generated_key()


async def main() -> None:
    async with ommi.connect("sqlite://") as db:
        reveal_type(await db.add(Author("A")).or_raise())  # Author
        reveal_type(await db.add(Book("x", 1, 1), Book("y", 2, 1)).or_raise())  # list[Book]
        reveal_type(db.find(Book))  # FindQuery[Book]
        reveal_type(db.find(Book, Book.year >= 1970, ommi.field(Book.title).in_(["x"])))  # FindQuery[Book]
        reveal_type(db.find(Book.year >= 1970))  # FindQuery[Any]
        reveal_type(await db.find(Book).one.or_raise())  # Book
        reveal_type(await db.find(Book).all.to_list())  # list[Book]
        reveal_type(await db.find(Book).count.or_raise())  # int
        async for book in db.find(Book).sort(ommi.desc(Book.year), ommi.asc(Book.title)).all:
            reveal_type(book)  # Book
            reveal_type(await book.author)  # Author | None
        author = await db.find(Author).one.or_raise()
        reveal_type(await author.books)  # list[Book]
        reveal_type(await db.save(author).or_raise())  # Author
        reveal_type(ommi.when(Book.year > 1).Or(Book.title == "x").And(ommi.field(Book.title).contains("y")))  # Expr
        reveal_type(await db.find(Author).one.or_use(None))  # Author | None
        reveal_type(await Note("x").save().or_raise())  # Note
        reveal_type(await Note("x").delete().or_raise())  # int
        note = await db.add(Note("y")).or_raise()
        reveal_type(note.id)  # int: generated_key() types the key as the key's own type
        reveal_type(await db.find(Note, Note.id == note.id).count.or_raise())  # int
        reveal_type(await db.find(Book).update(year=Book.year + 1, title=Book.title).or_raise())  # int
        reveal_type(ommi.field(Book.year) * 2)  # Arithmetic: the update expression, typed
        reveal_type(await db.find(Book).values(Book.title, Book.year).to_list())  # list[tuple[str, int]]
        reveal_type(await db.find(Book).values(Book.author_id).distinct().to_list())  # list[tuple[int]]
        reveal_type(await db.find(Book).exists.or_raise())  # bool
        reveal_type(await db.raw("SELECT 1").or_raise())  # list[tuple[Any, ...]]
        reveal_type(db.find(Post, Post.meta["plan"] == "pro", ommi.field(Post.tags).has("x")))  # FindQuery[Post]
        reveal_type((await db.find(Post).one.or_raise()).meta)  # dict[str, Any]
        reveal_type(await db.find(Book).aggregate(n=ommi.Count(), total=ommi.Sum(Book.year)).or_raise())  # dict
        grouped = db.find(Book).group_by(Book.author_id).having(ommi.Aggregated("n") >= 2)
        reveal_type(await grouped.aggregate(n=ommi.Count(), newest=ommi.Max(Book.year)).or_raise())  # list[dict]
        book = await db.find(Book).one.or_raise()
        print(book.titel)  # a typo: both checkers must report it
"""

EXPECTED = [
    "Author",
    "list[Book]",
    "FindQuery[Book]",
    "FindQuery[Book]",
    "FindQuery[Any]",
    "Book",
    "list[Book]",
    "int",
    "Book",
    "Author | None",
    "list[Book]",
    "Author",
    "Expr",
    "Author | None",
    "Note",
    "int",
    "int",
    "int",
    "int",
    "Arithmetic",
    "list[tuple[str, int]]",
    "list[tuple[int]]",
    "bool",
    "list[tuple[Any, ...]]",
    "FindQuery[Post]",
    "dict[str, Any]",
    "dict[str, Any]",
    "list[dict[str, Any]]",
]
"""The revealed types in order, module and package prefixes removed."""


def _short(text: str) -> str:
    """A revealed type without module prefixes (``ommi.query.find.FindQuery[example.Book]`` -> ``FindQuery[Book]``)."""
    return re.sub(r"\b(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_])", "", text)


@pytest.fixture
def program(tmp_path: Path) -> Path:
    path = tmp_path / "example.py"
    path.write_text(PROGRAM, encoding="utf-8")
    (tmp_path / "mypy.ini").write_text("[mypy]\nplugins = ommi.mypy\n", encoding="utf-8")
    return path


def test_mypy_strict_types_results_and_reports_typos(program: Path) -> None:
    """Under ``mypy --strict`` (``ommi.mypy`` plugin on) results have the model's type; the typo is the one error."""
    config = program.parent / "mypy.ini"
    cache = program.parent / ".mypy_cache"
    stdout, stderr, _ = mypy_api.run(
        ["--strict", "--config-file", str(config), "--cache-dir", str(cache), "--no-error-summary", str(program)]
    )
    revealed = [_short(m) for m in re.findall(r'note: Revealed type is "(.*)"', stdout)]
    assert revealed == EXPECTED, stdout + stderr
    errors = [line for line in stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1, stdout
    assert '"Book" has no attribute "titel"' in errors[0]


def test_pyright_types_results_and_reports_typos(program: Path) -> None:
    """pyright, with no plugin, gives the same types and reports the typo as its only error."""
    pyright = shutil.which("pyright")
    if pyright is None:
        pytest.skip("pyright is not on PATH: run `uv run --with pyright pytest ...` or `nox -s typecheck_docs`")
    completed = subprocess.run(
        [pyright, "--outputjson", "--pythonversion", "3.11", "--pythonpath", sys.executable, str(program)],
        cwd=program.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    report = json.loads(completed.stdout)
    diagnostics = report["generalDiagnostics"]
    revealed = [
        _short(re.sub(r'^Type of ".*" is "(.*)"$', r"\1", d["message"], flags=re.DOTALL))
        for d in diagnostics
        if d["severity"] == "information"
    ]
    assert revealed == EXPECTED, completed.stdout
    errors = [d for d in diagnostics if d["severity"] == "error"]
    assert len(errors) == 1, completed.stdout
    assert 'Cannot access attribute "titel" for class "Book"' in errors[0]["message"]


DRIVERS = """
import sqlite3

import ommi
from ommi import errors
from ommi.drivers import map_exceptions
from ommi_sqlite import SQLiteDriver


def translate(exc: sqlite3.Error) -> errors.OmmiError | None:
    return errors.OperationalError(f"{exc.sqlite_errorname}: {exc}")


def main() -> None:
    db = ommi.connect("sqlite://", pool_size=2)
    reveal_type(db.driver.settings)  # what every driver's settings have
    reveal_type(db.driver.settings.batch_size)
    if isinstance(db.driver, SQLiteDriver):
        reveal_type(db.driver.settings)  # the driver's own settings class
        print(db.driver.settings.pool_sise)  # a typo: both checkers must report it
    exceptions = {sqlite3.Error: translate}  # keyed by the client's own exception class
    with map_exceptions(exceptions):
        pass
"""


def _mypy_strict(program: Path) -> tuple[list[str], list[str], str]:
    """``mypy --strict`` with the plugin: the revealed types (short), the error lines and the whole output."""
    output = _mypy(program, plugin=True)
    revealed = [_short(m) for m in re.findall(r'note: Revealed type is "(.*)"', output)]
    return revealed, [line for line in output.splitlines() if ": error:" in line], output


def _pyright(program: Path) -> tuple[list[str], list[str], str]:
    """pyright (skipping the test when it is not on PATH): the revealed types, the error messages and its report."""
    pyright = shutil.which("pyright")
    if pyright is None:
        pytest.skip("pyright is not on PATH: run `uv run --with pyright pytest ...` or `nox -s typecheck_docs`")
    completed = subprocess.run(
        [pyright, "--outputjson", "--pythonversion", "3.11", "--pythonpath", sys.executable, str(program)],
        cwd=program.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    diagnostics = json.loads(completed.stdout)["generalDiagnostics"]
    revealed = [
        _short(re.sub(r'^Type of ".*" is "(.*)"$', r"\1", d["message"], flags=re.DOTALL))
        for d in diagnostics
        if d["severity"] == "information"
    ]
    return revealed, [d["message"] for d in diagnostics if d["severity"] == "error"], completed.stdout


TYPO = """
from dataclasses import dataclass

import ommi


@ommi.ommi_model
@dataclass
class User:
    name: str
    id: int | None = None


async def main() -> None:
    async with ommi.connect("sqlite://") as db:
        u = await db.find(User).one.or_raise()
        print(u.name)
        print(u.nmae)
"""


@pytest.mark.parametrize("checker", ["mypy", "pyright"])
def test_a_typo_on_a_fetched_model_is_reported(checker: str, tmp_path: Path) -> None:
    """``u.nmae`` on ``await db.find(User).one.or_raise()`` is the one error, for both checkers."""
    program = tmp_path / "typo.py"
    program.write_text(TYPO, encoding="utf-8")
    _, errors, output = (_mypy_strict if checker == "mypy" else _pyright)(program)
    assert len(errors) == 1, output
    assert '"nmae"' in errors[0] and '"User"' in errors[0], output


@pytest.mark.parametrize("checker", ["mypy", "pyright"])
def test_driver_settings_and_exception_maps_are_typed(checker: str, tmp_path: Path) -> None:
    """``db.driver.settings`` is typed (the common part, or the driver's own class once narrowed), and
    ``map_exceptions`` takes a dict keyed by a client's exception classes."""
    program = tmp_path / "drivers.py"
    program.write_text(DRIVERS, encoding="utf-8")
    revealed, errors, output = (_mypy_strict if checker == "mypy" else _pyright)(program)
    assert revealed == ["DriverSettings", "int", "SQLiteSettings"], output
    assert len(errors) == 1, output
    assert "pool_sise" in errors[0], output


def test_every_first_party_driver_sets_the_settings_it_declares() -> None:
    """``Driver.settings`` is declared on the base class: each driver sets it, with the batch size it uses."""
    from ommi_mongodb import MongoDBDriver
    from ommi_postgresql import PostgreSQLDriver
    from ommi_sqlite import SQLiteDriver
    from ommi_testkit import ReferenceDriver

    drivers = [
        SQLiteDriver.connect("sqlite://", batch_size=7),
        PostgreSQLDriver.connect("postgresql://app@127.0.0.1:5432/shop", batch_size=7),
        MongoDBDriver.connect("mongodb://127.0.0.1:27017/shop", batch_size=7),
        ReferenceDriver.connect("reference://", batch_size=7),
    ]
    for driver in drivers:  # built only: no I/O
        assert driver.settings.batch_size == driver.default_batch_size == 7, driver


def test_typed_operands_are_the_fields_at_run_time() -> None:
    """``ommi.field``, ``ommi.asc`` and ``ommi.desc`` give the field and its sort keys; other values are refused."""
    from dataclasses import dataclass

    import ommi
    from ommi.models.schema import Field

    @ommi.ommi_model(collection=ommi.ModelCollection("typing"))
    @dataclass
    class Item:
        name: str
        id: int | None = None

    name: object = Item.name
    assert isinstance(name, Field)
    assert ommi.field(Item.name) is name
    assert ommi.asc(Item.name) == name.asc
    assert ommi.desc(Item.name) == name.desc
    with pytest.raises(ommi.QueryError, match=r"ommi.field\(\) takes a model field"):
        ommi.field(Item("x").name)


@pytest.mark.parametrize("library", ["dataclass", "slots dataclass", "attrs", "pydantic"])
async def test_model_methods_base_gives_the_decorators_methods(library: str) -> None:
    """A model inheriting ``ommi.ModelMethods`` saves, reloads and deletes through the active database."""
    import dataclasses

    import attrs
    import ommi
    import pydantic

    collection = ommi.ModelCollection(f"typing_{library.replace(' ', '_')}")
    if library == "attrs":

        @ommi.ommi_model(collection=collection, name="Note")
        @attrs.define
        class Note(ommi.ModelMethods):
            text: str
            id: int | None = None

    elif library == "pydantic":

        @ommi.ommi_model(collection=collection, name="Note")
        class Note(pydantic.BaseModel, ommi.ModelMethods):  # type: ignore[no-redef]
            text: str
            id: int | None = None

    else:

        @ommi.ommi_model(collection=collection, name="Note")
        @dataclasses.dataclass(slots=library == "slots dataclass")
        class Note(ommi.ModelMethods):  # type: ignore[no-redef]
            text: str
            id: int | None = None

    async with ommi.connect("sqlite://") as db:
        await db.use_models(collection)
        note = Note(text="a")
        assert await note.save().or_raise() is note
        assert note.id == 1
        note.text = "changed"
        assert await note.reload().or_raise() is note
        assert note.text == "a"
        assert await note.delete().or_raise() == 1
        assert await db.find(Note).count.or_raise() == 0


LIBRARIES = """
from dataclasses import dataclass

import attrs
import pydantic

import ommi

shelf = ommi.ModelCollection("libraries")


@ommi.ommi_model(collection=shelf)
@dataclass(frozen=True)
class Frozen:
    name: str
    id: int | None = None


@ommi.ommi_model(collection=shelf)
@attrs.define
class Slotted:
    name: str
    id: int | None = None


@ommi.ommi_model(collection=shelf)
@attrs.frozen
class FrozenAttrs:
    name: str
    id: int | None = None


@ommi.ommi_model(collection=shelf)
class Pydantic(pydantic.BaseModel):
    name: str
    id: int | None = None


async def main(db: ommi.Ommi) -> None:
    reveal_type(await db.find(Frozen, Frozen.name == "a").sort(ommi.desc(Frozen.name)).one.or_raise())
    reveal_type(await db.find(Slotted, Slotted.name == "a").sort(Slotted.name).one.or_raise())
    reveal_type(await db.find(FrozenAttrs, FrozenAttrs.name == "a").one.or_raise())
    reveal_type(await db.find(Pydantic, Pydantic.name == "a").one.or_raise())
"""


def _mypy(program: Path, *, plugin: bool) -> str:
    config = program.parent / "mypy.ini"
    config.write_text("[mypy]\n" + ("plugins = ommi.mypy\n" if plugin else ""), encoding="utf-8")
    cache = program.parent / ".mypy_cache"
    stdout, stderr, _ = mypy_api.run(
        ["--strict", "--config-file", str(config), "--cache-dir", str(cache), "--no-error-summary", str(program)]
    )
    return stdout + stderr


def test_mypy_plugin_lets_fields_be_read_on_the_class(tmp_path: Path) -> None:
    """With ``ommi.mypy``, fields read on dataclass, attrs (slotted) and pydantic models are no error."""
    program = tmp_path / "libraries.py"
    program.write_text(LIBRARIES, encoding="utf-8")
    output = _mypy(program, plugin=True)
    assert [_short(m) for m in re.findall(r'note: Revealed type is "(.*)"', output)] == [
        "Frozen",
        "Slotted",
        "FrozenAttrs",
        "Pydantic",
    ], output
    assert ": error:" not in output, output


def test_mypy_without_the_plugin_refuses_fields_read_on_the_class(tmp_path: Path) -> None:
    """Why the plugin exists: without it mypy refuses ``Model.field`` of a field with no default."""
    program = tmp_path / "libraries.py"
    program.write_text(LIBRARIES, encoding="utf-8")
    output = _mypy(program, plugin=False)
    assert 'Cannot access instance-only attribute "name" on class object' in output, output
    assert '"name" in __slots__ conflicts with class variable access' in output, output


async def test_generated_key_is_none_until_added() -> None:
    """``id: int = ommi.generated_key()`` behaves as ``id: int | None = None``: None, then the generated key."""
    from dataclasses import dataclass
    from typing import Annotated

    import ommi

    collection = ommi.ModelCollection("typing_generated_key")

    @ommi.ommi_model(collection=collection)
    @dataclass
    class Writer:
        name: str
        id: int = ommi.generated_key()

    @ommi.ommi_model(collection=collection)
    @dataclass
    class Text:
        title: str
        writer_id: Annotated[int, ommi.ReferenceTo(Writer.id)]
        id: int = ommi.generated_key()

    writer = Writer("w")
    assert writer.id is None
    async with ommi.connect("sqlite://") as db:
        await db.use_models(collection)
        await db.add(writer).or_raise()
        assert writer.id == 1
        first, second = await db.add(Text("a", writer.id), Text("b", writer.id)).or_raise()
        assert (first.id, second.id) == (1, 2)
        assert await db.find(Text, Text.writer_id == writer.id).count.or_raise() == 2
        with pytest.raises(ommi.ValidationError, match=r"Text.writer_id is not optional"):
            await db.add(Text("c", ommi.generated_key())).or_raise()
