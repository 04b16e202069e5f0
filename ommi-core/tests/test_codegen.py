"""Generated functions carry real file names, source lines and qualified names."""

from __future__ import annotations

import gc
import linecache
import traceback

import pytest
from ommi._codegen import GENERATED_PREFIX, generate, generated
from ommi._rowcode import compile_builders, row_converter


def test_traceback_shows_the_generated_line() -> None:
    (divide,) = generate("def divide(a, b):\n    return a // b\n", ("divide",), {}, label="a divider")
    with pytest.raises(ZeroDivisionError) as info:
        divide(1, 0)
    text = "".join(traceback.format_exception(info.value))
    assert GENERATED_PREFIX + "a divider #" in text
    assert "return a // b" in text
    assert divide.__qualname__ == "<a divider>.divide"
    assert generated(divide) and not generated(test_traceback_shows_the_generated_line)


def test_each_compilation_gets_its_own_file_name() -> None:
    first = generate("def f():\n    return 1\n", ("f",), {}, label="same")[0]
    second = generate("def f():\n    return 2\n", ("f",), {}, label="same")[0]
    assert first.__code__.co_filename != second.__code__.co_filename
    assert linecache.getline(second.__code__.co_filename, 2).strip() == "return 2"


def test_the_source_is_forgotten_with_the_last_function() -> None:
    f, g = generate("def f():\n    return 1\ndef g():\n    return 2\n", ("f", "g"), {}, label="pair")
    filename = f.__code__.co_filename
    del f
    gc.collect()
    assert filename in linecache.cache  # g still lives
    del g
    gc.collect()
    assert filename not in linecache.cache


def test_a_wrong_width_row_names_its_generated_line() -> None:
    build, _ = compile_builders(3, {1: str}, tuple, positional=False, label="row builders of test.Thing")
    with pytest.raises(IndexError) as info:
        build((1, 2))
    text = "".join(traceback.format_exception(info.value))
    assert "row builders of test.Thing" in text and "c1(r[1])" in text
    convert = row_converter(2, {0: int})
    assert convert is not None and generated(convert)
    assert convert([("1", "x")]) == [(1, "x")]
