"""The README's settings table lists every :class:`~api.settings.Settings` field under the
environment variable that sets it, with its default, so the table cannot drift from the code."""

from __future__ import annotations

import enum
import re
from pathlib import Path

import pytest
from pydantic import SecretStr

from api.settings import Settings, env_name

README = Path(__file__).resolve().parents[2] / "README.md"


def settings_table(markdown: str) -> dict[str, tuple[str, str]]:
    """``## Settings``' table: variable -> (default cell, description cell)."""
    section = markdown.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, tuple[str, str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) != 3 or not cells[0].startswith("`"):
            continue
        name = cells[0].strip("`")
        assert name not in rows, f"{name} is in the table twice"
        rows[name] = (cells[1], cells[2])
    return rows


def rendered(default: object) -> str:
    """A default as the table writes it, between the backticks of its default cell."""
    if isinstance(default, SecretStr):
        default = default.get_secret_value()
    if default is None:
        return "unset"
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, enum.Enum):
        return str(default.value)
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return str(default)


def test_every_setting_is_in_the_readme_table_with_its_default() -> None:
    table = settings_table(README.read_text())
    fields = {env_name(name): field for name, field in Settings.model_fields.items()}
    assert sorted(set(fields) - set(table)) == [], "settings missing from README.md's table"
    assert sorted(set(table) - set(fields)) == [], "README.md's table names unknown settings"
    for name, field in fields.items():
        default_cell, description = table[name]
        shown = re.match(r"`([^`]*)`", default_cell)
        assert shown, f"{name}: the default cell must start with the default in backticks"
        assert shown[1] == rendered(field.default), f"{name}: README says {shown[1]}"
        assert description, f"{name} is not described"


def test_the_table_check_reads_what_it_should() -> None:
    text = (
        "# x\n\n## Settings\n\n| setting | default | what |\n|---|---|---|\n"
        "| `SWITCHBOARD_A` | `1` | one |\n| `SWITCHBOARD_B` | `unset` (on) | two |\n\n## Next\n"
        "| `SWITCHBOARD_C` | `3` | not in the section |\n"
    )
    assert settings_table(text) == {
        "SWITCHBOARD_A": ("`1`", "one"),
        "SWITCHBOARD_B": ("`unset` (on)", "two"),
    }
    assert [rendered(v) for v in (None, True, 300.0, 0.25, SecretStr("s"), 5)] == [
        "unset",
        "true",
        "300",
        "0.25",
        "s",
        "5",
    ]


def test_env_name_is_the_variable_pydantic_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(env_name("webhook_allow_http"), "true")
    monkeypatch.setenv(env_name("db_pool_size"), "7")
    built = Settings()
    assert built.webhook_allow_http is True and built.db_pool_size == 7
    with pytest.raises(KeyError):
        env_name("no_such_setting")
