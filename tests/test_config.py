"""Configuration: environment and kommutator.toml, validated at start with messages that say what to fix."""

from __future__ import annotations

import stat

import pytest

from kommutator.config import ConfigError, load_settings


def test_defaults_use_sqlite_in_the_data_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = load_settings(data_dir=tmp_path / "data")
    assert s.database_url == f"sqlite+aiosqlite:///{(tmp_path / 'data' / 'kommutator.db').resolve()}"
    assert s.is_sqlite


def test_secret_key_is_generated_once_and_kept(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = load_settings(data_dir=tmp_path / "d").secret_key
    again = load_settings(data_dir=tmp_path / "d").secret_key
    assert first == again and len(first) >= 32
    key_file = tmp_path / "d" / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_environment_overrides(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KOMMUTATOR_LISTEN_PORT", "9001")
    monkeypatch.setenv("KOMMUTATOR_PUBLIC_BASE_URL", "https://support.example.com/")
    s = load_settings(data_dir=tmp_path / "d")
    assert s.listen_port == 9001
    assert s.public_base_url == "https://support.example.com"


def test_toml_file_is_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "kommutator.toml").write_text(
        '[kommutator]\nlisten_port = 8111\nredis_url = "redis://127.0.0.1:6379/0"\n', encoding="utf-8")
    s = load_settings(data_dir=tmp_path / "d")
    assert s.listen_port == 8111 and s.redis_url == "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize(("env", "value", "fragment"), [
    ("KOMMUTATOR_DATABASE_URL", "mysql://x", "postgresql+asyncpg://"),
    ("KOMMUTATOR_LISTEN_PORT", "99999", "listen_port"),
    ("KOMMUTATOR_REDIS_URL", "http://nope", "redis://"),
    ("KOMMUTATOR_PUBLIC_BASE_URL", "support.example.com", "absolute http(s) URL"),
    ("KOMMUTATOR_SECRET_KEY", "short", "at least 32 characters"),
])
def test_bad_values_say_what_to_fix(tmp_path, monkeypatch, env, value, fragment):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as err:
        load_settings(data_dir=tmp_path / "d")
    assert fragment in str(err.value)
    assert env in str(err.value), "the message must name the variable to change"


def test_unknown_setting_in_toml_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "kommutator.toml").write_text("[kommutator]\nlisten_prot = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="listen_prot"):
        load_settings(data_dir=tmp_path / "d")


def test_broken_toml_is_reported(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "kommutator.toml").write_text("[kommutator\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"kommutator\.toml"):
        load_settings(data_dir=tmp_path / "d")


def test_the_public_url_follows_the_listen_port_unless_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_settings(data_dir=tmp_path, listen_port=8123).public_base_url == "http://127.0.0.1:8123"
    assert load_settings(data_dir=tmp_path, listen_host="0.0.0.0", listen_port=9000).public_base_url == (
        "http://127.0.0.1:9000")
    assert load_settings(data_dir=tmp_path, listen_host="::1", listen_port=9001).public_base_url == "http://[::1]:9001"
    monkeypatch.setenv("KOMMUTATOR_PUBLIC_BASE_URL", "https://support.example.com/")
    assert load_settings(data_dir=tmp_path, listen_port=8123).public_base_url == "https://support.example.com"
