"""Settings precedence (flags > env > file > defaults), coercion errors, and the generated reference."""

from __future__ import annotations

from pathlib import Path

import pytest

from arkserve import settings
from arkserve.errors import ValidationFailed


def test_precedence(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("api:\n  port: 9000\n  host: 127.0.0.2\ngateway:\n  tls: false\n")
    env = {"ARKSERVE_DATA_DIR": str(tmp_path), "ARKSERVE_API_PORT": "9100"}
    s = settings.load({"api.port": 9200}, env=env)
    assert (s.api.port, s.api.host, s.gateway.tls) == (9200, "127.0.0.2", False)
    assert settings.load({}, env=env).api.port == 9100
    assert settings.load({}, env={"ARKSERVE_DATA_DIR": str(tmp_path)}).api.port == 9000
    assert settings.load({}, env={}).api.port == 7780
    assert settings.load({}, env={}).data_dir == Path("~/.arkserve").expanduser()
    assert s.database_url == f"sqlite:///{tmp_path}/arkserve.db"


def test_bad_values_name_the_setting() -> None:
    with pytest.raises(ValidationFailed) as e:
        settings.load({}, env={"ARKSERVE_API_PORT": "eighty"})
    assert e.value.field == "api.port"


def test_children_see_the_same_settings(tmp_path: Path) -> None:
    s = settings.load({"data_dir": str(tmp_path), "gateway.tls": False, "api.port": 1234}, env={})
    assert settings.load({}, env=settings.to_env(s)) == s


def test_configuration_reference_is_current() -> None:
    doc = Path(__file__).parents[2] / "docs" / "configuration.md"
    assert doc.read_text() == settings.reference_markdown(), "run: python -m arkserve.settings > docs/configuration.md"
