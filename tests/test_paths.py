"""econash.cache_dir: the one cache directory, moved by ECONASH_CACHE_DIR or XDG_CACHE_HOME."""

from __future__ import annotations

import pytest

import econash
from econash.engine.cache import default_cache_path
from econash.errors import PluginError
from econash.paths import cache_dir


def test_econash_cache_dir_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("ECONASH_CACHE_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert econash.cache_dir() == tmp_path / "mine"
    assert cache_dir("travelplanner") == tmp_path / "mine" / "travelplanner"
    assert default_cache_path() == tmp_path / "mine" / "responses.sqlite"


def test_xdg_cache_home_then_the_home_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("ECONASH_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir("plugin") == tmp_path / "xdg" / "econash" / "plugin"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "econash"
    assert default_cache_path() == cache_dir() / "responses.sqlite"


def test_an_empty_variable_counts_as_unset(monkeypatch, tmp_path):
    monkeypatch.setenv("ECONASH_CACHE_DIR", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "econash"


def test_nothing_is_created(monkeypatch, tmp_path):
    monkeypatch.setenv("ECONASH_CACHE_DIR", str(tmp_path / "cache"))
    cache_dir("plugin")
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "..\\up"])
def test_a_name_must_be_one_folder(name):
    with pytest.raises(PluginError, match="one folder name"):
        cache_dir(name)
