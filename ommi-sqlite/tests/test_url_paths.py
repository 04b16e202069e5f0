"""Paths in ``sqlite:`` URLs, SQLAlchemy's way (issue 13).

``sqlite:///relative/path.db`` (three slashes) is relative to the working
directory, ``sqlite:////absolute/path.db`` (four) is absolute, ``sqlite://`` is
in memory. Anything else after ``sqlite:`` is refused: ``sqlite:/app.db`` used
to create ``/app.db`` at the root of the file system. Every message about a
URL's path or a relative path shows the four-slash form for absolute paths.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import ommi
import pytest
from ommi.errors import ConfigurationError, ConnectionError
from ommi_sqlite import SQLiteDriver

THREE = "sqlite:///relative/path.db"
FOUR = "sqlite:////absolute/path.db"


def _explains_the_forms(message: str) -> None:
    assert THREE in message and "three slashes" in message
    assert FOUR in message and "four slashes" in message
    assert "absolute path" in message


@pytest.mark.parametrize(
    ("url", "after"),
    [
        ("sqlite:/{name}", "one slash"),
        ("sqlite:{name}", "no slash"),
        ("sqlite:", "nothing"),
        ("sqlite:?pool_size=2", "nothing"),
        ("SQLITE:/{name}", "one slash"),
    ],
)
def test_a_url_without_two_slashes_is_refused(
    url: str, after: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    name = f"ommi-url-test-{secrets.token_hex(4)}.db"
    with pytest.raises(ConfigurationError) as caught:
        SQLiteDriver.connect(url.format(name=name))
    message = str(caught.value)
    assert f"has {after} after 'sqlite:'" in message
    _explains_the_forms(message)
    assert name not in message  # a mistyped URL is never quoted
    assert not Path("/", name).exists()
    assert list(tmp_path.iterdir()) == []


def test_ommi_connect_refuses_one_slash_before_touching_the_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    name = f"ommi-url-test-{secrets.token_hex(4)}.db"
    with pytest.raises(ConfigurationError, match="one slash after 'sqlite:'"):
        ommi.connect(f"sqlite:/{name}")
    assert not Path("/", name).exists()


def test_a_host_is_refused_with_the_forms() -> None:
    with pytest.raises(ConfigurationError) as caught:
        SQLiteDriver.connect("sqlite://localhost/app.db")
    assert "names a host" in str(caught.value)
    _explains_the_forms(str(caught.value))


async def test_three_slashes_are_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    db = ommi.connect("sqlite:///data/app.db")
    assert db.driver.settings.database == "data/app.db"
    async with db:
        pass
    assert (tmp_path / "data" / "app.db").is_file()


async def test_four_slashes_are_an_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    target = tmp_path / "absolute.db"
    url = f"sqlite:///{target}"
    assert url.startswith("sqlite:////")
    db = ommi.connect(url)
    assert db.driver.settings.database == str(target)
    async with db:
        pass
    assert target.is_file()
    assert list(elsewhere.iterdir()) == []


async def test_a_relative_path_that_cannot_be_opened_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConnectionError) as caught:
        async with ommi.connect("sqlite:///no/such/folder/app.db"):
            pass
    message = str(caught.value)
    assert "'no/such/folder/app.db'" in message
    assert f"relative to the working directory, {str(tmp_path)!r}" in message
    assert FOUR in message and "four slashes" in message


async def test_an_absolute_path_that_cannot_be_opened_has_no_relative_note(tmp_path: Path) -> None:
    with pytest.raises(ConnectionError) as caught:
        async with ommi.connect(f"sqlite:///{tmp_path}/no/such/folder/app.db"):
            pass
    assert "relative to the working directory" not in str(caught.value)
