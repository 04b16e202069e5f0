"""Every spelling of a lazy relation is resolved or refused, never silently dropped (issue 11, item 15).

``ClassVar["LazyMany[Book]"]`` (a string inside ``ClassVar``) used to be
ignored: the model had no relation and no error said why. Each spelling runs
with and without ``from __future__ import annotations``; the models are
compiled from source so the flag can differ (this module itself does not
postpone annotations).
"""

import __future__

import itertools
import sys
import types

import pytest
from ommi import Ommi
from ommi.errors import ModelDefinitionError
from ommi.models import get_schema
from ommi_testkit.reference import ReferenceDriver

SOURCE = """
from dataclasses import dataclass
from typing import Annotated, ClassVar

from ommi import LazyLoadEveryRelated, LazyLoadTheRelated, ModelCollection, ReferenceTo, ommi_model
from ommi.models.relations import LazyMany, LazyOne

collection = ModelCollection("{module}")


@ommi_model(collection=collection, name="{module}_author")
@dataclass
class Author:
    name: str
    id: int | None = None
    books: {many}


@ommi_model(collection=collection, name="{module}_book")
@dataclass
class Book:
    title: str
    author_id: Annotated[int, ReferenceTo("Author.id")]
    id: int | None = None
    author: {one}
"""

MANY = [
    'ClassVar["LazyMany[Book]"]',
    'ClassVar["LazyLoadEveryRelated[Book]"]',
    '"ClassVar[LazyLoadEveryRelated[Book]]"',
    '"ClassVar[LazyMany[Book]]"',
    'ClassVar[LazyMany["Book"]]',
    'LazyLoadEveryRelated["Book"]',
    '"LazyLoadEveryRelated[Book]"',
]
ONE = [
    'ClassVar["LazyLoadTheRelated[Author]"]',
    'ClassVar["LazyOne[Author]"]',
    '"ClassVar[LazyLoadTheRelated[Author]]"',
    "LazyLoadTheRelated[Author]",
]
_counter = itertools.count()


def _compile(many: str, one: str, *, postponed: bool) -> types.ModuleType:
    name = f"test_relation_spellings_{next(_counter)}"
    module = types.ModuleType(name)
    sys.modules[name] = module
    flags = __future__.annotations.compiler_flag if postponed else 0
    source = SOURCE.format(module=name, many=many, one=one)
    exec(compile(source, f"<{name}>", "exec", flags=flags, dont_inherit=True), module.__dict__)
    return module


def _quoted_under_postponed(spelling: str, postponed: bool) -> bool:
    """A whole relation annotation in quotes, compiled with postponed annotations, is a string inside a string.

    dataclasses then cannot see the ``ClassVar`` and make the attribute a
    field: a ``TypeError`` at definition (a field without default after ones
    with defaults), or, given a default, the ``ModelDefinitionError`` below.
    """
    return postponed and spelling.startswith('"')


@pytest.mark.parametrize("postponed", [False, True], ids=["evaluated", "postponed"])
@pytest.mark.parametrize(("many", "one"), list(itertools.zip_longest(MANY, ONE, fillvalue=ONE[0])))
async def test_relation_spelling_is_resolved(many: str, one: str, postponed: bool) -> None:
    if _quoted_under_postponed(many, postponed) or _quoted_under_postponed(one, postponed):
        with pytest.raises(TypeError, match=r"non-default argument '(books|author)'"):
            _compile(many, one, postponed=postponed)
        return
    module = _compile(many, one, postponed=postponed)
    author_schema, book_schema = get_schema(module.Author), get_schema(module.Book)
    assert set(author_schema.relations) == {"books"}
    assert author_schema.relations["books"].many
    assert set(book_schema.relations) == {"author"}
    assert not book_schema.relations["author"].many
    assert [f.name for f in author_schema.fields] == ["name", "id"]
    async with Ommi(ReferenceDriver.connect()) as db:
        await db.use_models(module.collection)
        author = await db.add(module.Author("Le Guin")).or_raise()
        book = await db.add(module.Book("The Dispossessed", author.id)).or_raise()
        assert [b.title for b in await author.books] == ["The Dispossessed"]
        assert (await book.author).name == "Le Guin"


@pytest.mark.parametrize("postponed", [False, True], ids=["evaluated", "postponed"])
@pytest.mark.parametrize(
    "many",
    [
        pytest.param('"ClassVar[LazyMany[Book]"', id="unparsable"),
        pytest.param('"ClassVar[LazyMany[Book]]" = None', id="quoted_with_default"),
        pytest.param('ClassVar["LazyMany[Book, Author]"]', id="two_targets"),
        pytest.param('ClassVar["LazyMany"]', id="no_target"),
    ],
)
def test_relation_spelling_that_cannot_be_read_is_refused(many: str, postponed: bool) -> None:
    def define() -> set[str]:
        return set(get_schema(_compile(many, ONE[0], postponed=postponed).Author).relations)

    if many.endswith("= None"):
        if not postponed:
            # An ordinary string annotation: dataclasses see the ClassVar; the default is a class attribute.
            assert define() == {"books"}
            return
        expected = r"Author\.books.*lazy relation.*treats it as a field"
    elif _quoted_under_postponed(many, postponed):
        with pytest.raises(TypeError, match=r"non-default argument 'books'"):
            define()
        return
    else:
        expected = r"Author\.books.*cannot be read"
    with pytest.raises(ModelDefinitionError, match=expected):
        define()


@pytest.mark.parametrize("postponed", [False, True], ids=["evaluated", "postponed"])
def test_other_class_variables_are_left_alone(postponed: bool) -> None:
    module = _compile('ClassVar["int"]', ONE[0], postponed=postponed)
    assert get_schema(module.Author).relations == {}
    assert [f.name for f in get_schema(module.Author).fields] == ["name", "id"]
