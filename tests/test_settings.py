"""Settings: one table, all documented, all loadable from the environment."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from communique.settings import TABLE, Settings, as_environ, env_name, load

README = Path(__file__).parent.parent / "README.md"


def test_table_and_settings_agree() -> None:
    """Every row of the table is a field of Settings with the same default, and back."""
    assert [row.name for row in TABLE] == [f.name for f in fields(Settings)]
    defaults = Settings()
    for row in TABLE:
        assert getattr(defaults, row.name) == row.default


def test_every_setting_is_documented_in_the_readme() -> None:
    """The README's settings table names every setting."""
    text = README.read_text()
    missing = [row.name for row in TABLE if f"| `{row.name}` |" not in text]
    assert missing == []


def test_environment_overrides_and_round_trip() -> None:
    """Values come from COMMUNIQUE_* variables, and as_environ reproduces a Settings."""
    settings = load({env_name("max_page_size"): "50", env_name("title"): "Node A"})
    assert settings.max_page_size == 50 and settings.title == "Node A"
    assert load(as_environ(settings)) == settings


def test_bad_values_are_refused_with_the_variable_named() -> None:
    """A malformed or out-of-range value names its variable."""
    with pytest.raises(ValueError, match="COMMUNIQUE_MAX_PAGE_SIZE"):
        load({env_name("max_page_size"): "0"})
    with pytest.raises(ValueError, match="at least 24"):
        load({env_name("status_retention_hours"): "2"})
