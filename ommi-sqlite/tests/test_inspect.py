"""Existing SQLite databases: compatible declared types, narrow-column limits, and ``ommi inspect``.

Tables are created with plain SQL (as another tool would), read back with
``inspect_schema`` and printed as a module, which is imported: its models
pass ``use_models()`` with no drift, read the rows SQL wrote, and refuse what
the declared types cannot hold, storing nothing. Their unique constraints
and indexes print as ``Unique``/``Index`` and still refuse duplicates.
"""

from __future__ import annotations

import datetime as dt
import decimal
import importlib.util
import itertools
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import pytest
from ommi import Key, ModelCollection, Ommi, ommi_model
from ommi.errors import IntegrityError, SchemaMismatchError, ValidationError
from ommi.migrations.printer import render_models
from ommi.models.constraints import constraint_name
from ommi.models.schema import get_schema

_modules = itertools.count()

LIBRARY = """
CREATE TABLE author (id INTEGER PRIMARY KEY, name VARCHAR(40) NOT NULL, born TIMESTAMPTZ);
CREATE TABLE book (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title varchar(40) NOT NULL,
    pages integer NOT NULL,
    rank smallint,
    price numeric(10,2) NOT NULL,
    published timestamptz NOT NULL,
    note text,
    author_id integer REFERENCES author(id)
);
INSERT INTO author (id, name, born) VALUES (1, 'Ursula', '1929-10-21 00:00:00+00:00');
INSERT INTO book (title, pages, rank, price, published, note, author_id)
    VALUES ('The Dispossessed', 387, 2, 12.5, '1974-05-01 10:00:00+00:00', NULL, 1);
"""


def load(path: Path) -> ModuleType:
    """Import the printed module at ``path`` under a fresh name."""
    spec = importlib.util.spec_from_file_location(f"ommi_inspected_{next(_modules)}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def inspect_to_module(db: Ommi, path: Path) -> ModuleType:
    inspection = await db.driver.inspect_schema()
    path.write_text(render_models(inspection))  # noqa: ASYNC240 - a small file in a test
    return load(path)


async def test_plain_sql_tables_round_trip_through_inspect(
    connect_file: Callable[..., Ommi], raw: sqlite3.Connection, tmp_path: Path
) -> None:
    """INTEGER PRIMARY KEY, integer, smallint, varchar(40), numeric(10,2), timestamptz, NULL and a foreign key."""
    raw.executescript(LIBRARY)
    async with connect_file() as db:
        module = await inspect_to_module(db, tmp_path / "library_models.py")
        Author, Book = module.Author, module.Book
        await db.use_models(module.models)  # no drift
        assert get_schema(Book).by_column["author_id"].reference is get_schema(Author).by_column["id"]
        book = await db.find(Book.title == "The Dispossessed").one.or_raise()
        # NUMERIC affinity stores a number: comparisons still work on it (and on what SQL wrote).
        assert await db.find(Book.price == decimal.Decimal("12.50")).count.or_raise() == 1
        assert await db.find(Book.price > decimal.Decimal("12.4")).count.or_raise() == 1
        assert (book.pages, book.rank, book.price, book.note) == (387, 2, decimal.Decimal("12.5"), None)
        assert book.published == dt.datetime(1974, 5, 1, 10, tzinfo=dt.UTC)
        author = await db.find(Author.id == 1).one.or_raise()
        assert (author.name, author.born) == ("Ursula", dt.datetime(1929, 10, 21, tzinfo=dt.UTC))

        added = await db.add(Book(title="Lathe", pages=184, price=decimal.Decimal("9.99"), published=book.published))
        assert added.or_raise().id == 2  # the rowid alias generated it

        too_long = Book(title="x" * 41, pages=1, price=decimal.Decimal(1), published=book.published)
        fine = Book(title="fine", pages=1, price=decimal.Decimal(1), published=book.published)
        with pytest.raises(ValidationError, match=r"Book\.title.*varchar\(40\)\): it has 41 characters"):
            await db.add(fine, too_long).or_raise()
        overflow = Book(title="rich", pages=1, price=decimal.Decimal("123456789"), published=book.published)
        with pytest.raises(ValidationError, match=r"Book\.price.*numeric\(10,2\)"):
            await db.add(overflow).or_raise()
        with pytest.raises(ValidationError, match=r"Author\.name.*VARCHAR\(40\)"):
            await db.find(Author.id == 1).update(name="y" * 41).or_raise()
    assert raw.execute("SELECT count(*) FROM book").fetchone() == (2,)  # neither `fine` nor `rich`
    assert raw.execute("SELECT name FROM author").fetchall() == [("Ursula",)]
    # numeric(10,2) rounds to 2 places: only the digits before the point can overflow.
    assert raw.execute("SELECT price FROM book WHERE id = 2").fetchone() == (9.99,)


limits = ModelCollection("ommi_sqlite_test_inspect_limits")


@ommi_model(collection=limits, name="narrow")
@dataclass
class Narrow:
    code: Annotated[str, Key]
    count: int
    amount: decimal.Decimal | None = None


async def test_accepted_types_and_limits(connect_file: Callable[..., Ommi], raw: sqlite3.Connection) -> None:
    """Affinity decides: CHAR(3) holds a str (3 characters at most), BIGINT an int (64-bit, no limit)."""
    raw.execute("CREATE TABLE narrow (code CHAR(3) PRIMARY KEY NOT NULL, count BIGINT NOT NULL, amount DECIMAL(4,2))")
    async with connect_file() as db:
        await db.use_models(limits)
        await db.add(Narrow("abc", 2**62, decimal.Decimal("99.994"))).or_raise()  # rounds to 99.99: fits
        with pytest.raises(ValidationError, match="4 characters"):
            await db.add(Narrow("abcd", 1)).or_raise()
        with pytest.raises(ValidationError, match="amount"):
            await db.add(Narrow("xyz", 1, decimal.Decimal("99.995"))).or_raise()  # rounds to 100.00
        with pytest.raises(ValidationError, match="amount"):
            await db.find(Narrow.code == "abc").update(amount=decimal.Decimal("-100")).or_raise()
        assert await db.find(Narrow).count.or_raise() == 1


async def test_incompatible_types_stay_drift(connect_file: Callable[..., Ommi], raw: sqlite3.Connection) -> None:
    """A declared type that cannot hold the field's values is drift: TEXT for int, INTEGER for str, REAL for Decimal."""
    raw.execute("CREATE TABLE narrow (code INTEGER PRIMARY KEY NOT NULL, count TEXT NOT NULL, amount REAL)")
    async with connect_file() as db:
        with pytest.raises(SchemaMismatchError) as caught:
            await db.use_models(limits)
    message = str(caught.value)
    assert "column 'code' has type INTEGER but Narrow.code needs a type of TEXT affinity" in message
    assert "column 'count' has type TEXT but Narrow.count needs a type of INTEGER affinity" in message
    assert "column 'amount' has type REAL but Narrow.amount needs DECIMAL_TEXT, NUMERIC or DECIMAL(p,s)" in message


async def test_ommi_own_tables_inspect_to_equivalent_models(connect_file: Callable[..., Ommi], tmp_path: Path) -> None:
    """Tables use_models() created (every storage type) print as models that pass use_models() again."""
    everything = ModelCollection("ommi_sqlite_test_inspect_every_type")

    @ommi_model(collection=everything, name="every")
    @dataclass
    class Every:
        i: int
        f: float
        d: decimal.Decimal
        b: bool
        s: str
        by: bytes
        day: dt.date
        at: dt.datetime
        optional: str | None = None
        id: int | None = None

    async with connect_file() as db:
        await db.use_models(everything)
        module = await inspect_to_module(db, tmp_path / "every_models.py")
        await db.use_models(module.models)
        fields = {f.column: f.storage for f in get_schema(module.Every).fields}
        assert fields == {f.column: f.storage for f in get_schema(Every).fields}


HOSTILE = [
    'we"ird',
    "new\nline",
    'tri"""ple',
    "class",
    "Decimal",
    "models",
    "1st table",
    "a-b",
    "a b",
    "é",
    "x" * 500,
    "x" * 500 + "y",
]


async def test_hostile_names_print_valid_safe_python(
    connect_file: Callable[..., Ommi], raw: sqlite3.Connection, tmp_path: Path
) -> None:
    """Quotes, newlines, keywords, builtins, colliding and huge names: the module imports and maps every table."""
    columns = ['"int" INTEGER NOT NULL', '"str" TEXT', '"x\r\n# import os" TEXT', '"save" TEXT', '"__init__" TEXT']
    for name in HOSTILE:
        quoted = '"' + name.replace('"', '""') + '"'
        raw.execute(f"CREATE TABLE {quoted} (id INTEGER PRIMARY KEY, {', '.join(columns)})")
        raw.execute(f'INSERT INTO {quoted} ("int", "x\r\n# import os") VALUES (7, \'kept\')')
    async with connect_file() as db:
        path = tmp_path / "hostile_models.py"
        module = await inspect_to_module(db, path)
        classes = {get_schema(cls).name: cls for cls in module.models}
        assert set(classes) == set(HOSTILE)
        assert len({cls.__name__ for cls in classes.values()}) == len(HOSTILE)
        await db.use_models(module.models)
        for name, cls in classes.items():
            row = await db.find(cls).one.or_raise()
            by_column = get_schema(cls).by_column
            assert getattr(row, by_column["int"].name) == 7, name
            assert getattr(row, by_column["x\r\n# import os"].name) == "kept", name
    text = path.read_text()
    assert "\nimport os" not in text
    assert max(len(cls.__name__) for cls in classes.values()) <= 60
    assert all(len(f.name) <= 60 for cls in classes.values() for f in get_schema(cls).fields)
    again = tmp_path / "again.py"
    async with connect_file() as db:
        again.write_text(render_models(await db.driver.inspect_schema()))
    assert again.read_text() == text


async def test_unsupported_tables_are_skipped_with_the_reason(
    connect_file: Callable[..., Ommi], raw: sqlite3.Connection, tmp_path: Path
) -> None:
    """JSON or untyped columns, no key, a composite int key: each table is named with why; the rest is mapped."""
    raw.executescript(
        """
        CREATE TABLE doc (id INTEGER PRIMARY KEY, body JSON);
        CREATE TABLE loose (id INTEGER PRIMARY KEY, anything);
        CREATE TABLE nokey (name TEXT);
        CREATE TABLE ok (id INTEGER PRIMARY KEY, doc_id INTEGER REFERENCES doc(id));
        CREATE TABLE ommi_migrations (id TEXT PRIMARY KEY);
        """
    )
    async with connect_file() as db:
        inspection = await db.driver.inspect_schema()
    assert set(inspection.state.models) == {"ok"}
    assert "'body' (JSON)" in inspection.skipped["doc"]
    assert "'anything' (no declared type)" in inspection.skipped["loose"]
    assert "no primary key" in inspection.skipped["nokey"]
    assert "ommi_migrations" not in inspection.skipped
    assert inspection.state.model("ok").field("doc_id").reference is None  # type: ignore[union-attr]
    assert "its table is not mapped" in inspection.notes["ok"][0]
    text = render_models(inspection)
    assert "# - 'doc': no Ommi type holds the column 'body' (JSON)" in text
    (tmp_path / "skipped_models.py").write_text(text)
    assert [get_schema(m).name for m in load(tmp_path / "skipped_models.py").models] == ["ok"]


def _ommi() -> str:
    command = shutil.which("ommi", path=os.path.dirname(sys.executable))
    if command is None:  # pragma: no cover - the workspace always installs the console script
        pytest.fail("the ommi console script is not installed next to this interpreter")
    return command


def test_ommi_inspect_command(raw: sqlite3.Connection, db_path: Path, tmp_path: Path) -> None:
    """``ommi inspect URL --out FILE``: writes the module, refuses to overwrite without --force, URL from OMMI_URL."""
    raw.executescript(LIBRARY + "CREATE TABLE doc (id INTEGER PRIMARY KEY, body JSON);")
    env = {**os.environ, "OMMI_URL": f"sqlite:///{db_path}"}

    def ommi(*argv: str, **changes: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [_ommi(), "inspect", *argv], cwd=tmp_path, env={**env, **changes}, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip

    out = tmp_path / "library_models.py"
    written = ommi(f"sqlite:///{db_path}", "--out", str(out))
    assert written.returncode == 0, written.stderr
    assert "Wrote" in written.stdout and "2 models" in written.stdout
    assert "skipped table 'doc': no Ommi type holds the column 'body' (JSON)" in written.stderr
    module = load(out)
    assert sorted(get_schema(m).name for m in module.models) == ["author", "book"]

    out.write_text("# mine\n")
    refused = ommi("--out", str(out))  # the URL from OMMI_URL
    assert refused.returncode == 1
    assert "exists; pass --force" in refused.stderr
    assert out.read_text() == "# mine\n"
    forced = ommi("--out", str(out), "--force")
    assert forced.returncode == 0, forced.stderr
    assert "class Book:" in out.read_text()

    printed = ommi()
    assert printed.returncode == 0 and printed.stdout == out.read_text()
    missing = ommi(OMMI_URL="")
    assert missing.returncode == 2
    assert "ommi inspect needs a database" in missing.stderr


async def test_composite_key_in_stored_order_passes_use_models(
    connect_file: Callable[..., Ommi], raw: sqlite3.Connection, tmp_path: Path
) -> None:
    """PRIMARY KEY (b, a) over columns a, b: the printed key is (b, a), which SQLite's drift check compares."""
    raw.execute("CREATE TABLE pair (a INTEGER NOT NULL, note TEXT, b TEXT NOT NULL, PRIMARY KEY (b, a))")
    raw.execute("INSERT INTO pair VALUES (1, 'one', 'x')")
    async with connect_file() as db:
        module = await inspect_to_module(db, tmp_path / "pair_models.py")
        await db.use_models(module.models)
        assert [f.column for f in get_schema(module.Pair).key] == ["b", "a"]
        row = await db.find(module.Pair).one.or_raise()
        assert (row.a, row.b, row.note) == (1, "x", "one")


SHOP = """
CREATE TABLE author (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE shop (
    id INTEGER PRIMARY KEY,
    email TEXT UNIQUE,
    team TEXT NOT NULL,
    number INTEGER NOT NULL,
    joined DATE NOT NULL,
    code TEXT,
    author_id INTEGER REFERENCES author(id),
    UNIQUE (team, number)
);
CREATE INDEX ix_shop_author_id ON shop (author_id);
CREATE INDEX "{joined}" ON shop (joined);
CREATE INDEX by_code_team ON shop (code, team);
CREATE UNIQUE INDEX shop_code_partial ON shop (code) WHERE code IS NOT NULL;
CREATE INDEX shop_lower_code ON shop (lower(code));
INSERT INTO shop (email, team, number, joined, code) VALUES ('a@x', 'red', 1, '2024-01-02', 'c1');
"""


async def test_unique_constraints_and_indexes_print_and_hold(
    connect_file: Callable[..., Ommi], raw: sqlite3.Connection, tmp_path: Path
) -> None:
    """UNIQUE columns and pairs, default-named and named indexes print; partial and expression ones are notes."""
    joined = constraint_name("shop", ["joined"], unique=False)
    raw.executescript(SHOP.format(joined=joined))
    async with connect_file() as db:
        path = tmp_path / "shop_models.py"
        module = await inspect_to_module(db, path)
        text = path.read_text()
        assert "    email: Annotated[str | None, Unique] = None  # TEXT" in text
        assert "    joined: Annotated[datetime.date, Index]  # DATE" in text
        # The UNIQUE of CREATE TABLE is named by SQLite (sqlite_autoindex_*), a name no statement may create.
        assert "        Unique('team', 'number'),\n        Index('code', 'team', name='by_code_team'),\n" in text
        assert "sqlite_autoindex" not in text and "ix_shop_author_id" not in text  # implied by ReferenceTo
        assert "# note: unique index 'shop_code_partial' on (code) left out: it is partial" in text
        assert "# note: index 'shop_lower_code' on (<expression>) left out: it is on an expression" in text
        await db.use_models(module.models)  # no drift: every printed constraint is one the table has
        Shop = module.Shop
        day = dt.date(2024, 1, 3)
        with pytest.raises(IntegrityError):
            await db.add(Shop(email="a@x", team="blue", number=1, joined=day)).or_raise()
        with pytest.raises(IntegrityError):
            await db.add(Shop(team="red", number=1, joined=day)).or_raise()
        await db.add(Shop(team="red", number=2, joined=day), Shop(team="red", number=3, joined=day)).or_raise()
    assert raw.execute("SELECT count(*) FROM shop").fetchone() == (3,)
