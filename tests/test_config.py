"""Loading the TOML file and the environment, and the errors that stop start-up."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from tkr_host import hookimpl
from tkr_host.config import ConfigError, load_settings
from tkr_host.plugins import make_plugin_manager, validate_plugin_tables

#: Found from this file, not the working directory.
EXAMPLE = Path(__file__).resolve().parents[1] / "config.example.toml"


def write(tmp_path, text: str):
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_hypercorn_keys_stay_at_the_top_and_the_host_table_is_read(tmp_path):
    path = write(tmp_path, 'bind = ["127.0.0.1:9999"]\nworkers = 1\n[host]\nmax_payload_bytes = 1000\n')
    settings = load_settings(path)
    assert settings.hypercorn == {"bind": ["127.0.0.1:9999"], "workers": 1}
    assert settings.hypercorn_config().bind == ["127.0.0.1:9999"]
    assert settings.host.max_payload_bytes == 1000
    assert settings.config_path == path


def test_a_missing_file_is_an_error_not_silence(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_settings(tmp_path / "absent.toml")


def test_invalid_toml_names_the_file(tmp_path):
    path = write(tmp_path, "bind = [\n")
    with pytest.raises(ConfigError, match=r"config\.toml: not valid TOML"):
        load_settings(path)


def test_an_unknown_top_level_key_is_named(tmp_path):
    path = write(tmp_path, "bnid = []\n")
    with pytest.raises(ConfigError, match=r"config\.toml: unknown top-level key 'bnid'"):
        load_settings(path)


def test_an_unknown_host_key_is_named_with_file_and_table(tmp_path):
    path = write(tmp_path, "[host]\nmax_payload = 5\n")
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    assert str(error.value).startswith(f"{path}: [host] max_payload: ")
    assert "\n" not in str(error.value)


def test_a_wrong_type_is_named(tmp_path):
    path = write(tmp_path, '[host]\nhistory_limit = "many"\n')
    with pytest.raises(ConfigError, match=r"\[host\] history_limit: Input should be a valid integer"):
        load_settings(path)


def test_environment_overrides_the_file(tmp_path, monkeypatch):
    path = write(tmp_path, "[host]\nhistory_limit = 10\n")
    monkeypatch.setenv("TKR_HOST__HISTORY_LIMIT", "20")
    assert load_settings(path).host.history_limit == 20


def test_env_secret_is_read_from_the_named_variable(tmp_path, monkeypatch):
    path = write(tmp_path, '[host]\npublic_url = "env:TKR_TEST_PUBLIC_URL"\n')
    monkeypatch.setenv("TKR_TEST_PUBLIC_URL", "https://chat.example")
    assert load_settings(path).host.public_url == "https://chat.example"
    monkeypatch.delenv("TKR_TEST_PUBLIC_URL")
    with pytest.raises(ConfigError, match="environment variable TKR_TEST_PUBLIC_URL is not set"):
        load_settings(path)


class ExampleSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str
    size: int = 3


class ExamplePlugin:
    __name__ = "example"

    @hookimpl
    def config_model(self) -> type[BaseModel]:
        return ExampleSettings


def _validate(tmp_path, text: str):
    settings = load_settings(write(tmp_path, text))
    return validate_plugin_tables(make_plugin_manager(settings, [ExamplePlugin()], entry_points=False), settings)


def test_a_plugin_table_is_validated_by_the_plugins_own_model(tmp_path, monkeypatch):
    monkeypatch.setenv("TKR_TEST_TOKEN", "s3cret")
    validated = _validate(tmp_path, '[plugins.example]\ntoken = "env:TKR_TEST_TOKEN"\nsize = 5\n')
    assert validated["example"] == ExampleSettings(token="s3cret", size=5)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[plugins.example]\ntoken = "x"\ncolour = 1\n', r"\[plugins\.example\] colour: Extra inputs are not permitted"),
        ('[plugins.example]\ntoken = "x"\nsize = "big"\n', r"\[plugins\.example\] size: Input should be a valid integer"),
        ("[plugins.example]\nsize = 1\n", r"\[plugins\.example\] token: Field required"),
        ('[plugins.exampel]\ntoken = "x"\n', r"\[plugins\.exampel\]: no plugin named 'exampel' is installed"),
    ],
)
def test_plugin_table_errors_name_file_table_and_key(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message) as error:
        _validate(tmp_path, text)
    assert str(error.value).startswith(str(tmp_path / "config.toml"))


def test_a_table_for_a_disabled_plugin_is_ignored(tmp_path):
    validated = _validate(tmp_path, '[host]\ndisable_plugins = ["exampel"]\n[plugins.exampel]\nanything = 1\n[plugins.example]\ntoken = "x"\n')
    assert "exampel" not in validated


def test_the_example_config_file_is_valid(monkeypatch):
    monkeypatch.setenv("TKR_JWT_SECRET", "n" * 48)
    settings = load_settings(EXAMPLE)
    validated = validate_plugin_tables(make_plugin_manager(settings), settings)
    assert settings.hypercorn["bind"] == ["127.0.0.1:8000"]
    assert "store_peewee" in validated


def test_a_list_in_an_environment_variable_is_decoded_for_a_plugin(tmp_path, monkeypatch):
    class ListSettings(BaseModel):
        model_config = ConfigDict(extra="forbid")
        names: list[str] = []
        label: str = ""

    class ListPlugin:
        __name__ = "lists"

        @hookimpl
        def config_model(self) -> type[BaseModel]:
            return ListSettings

    monkeypatch.setenv("TKR_PLUGINS__LISTS__NAMES", '["a", "b"]')
    monkeypatch.setenv("TKR_PLUGINS__LISTS__LABEL", '["kept as text"]')
    settings = load_settings(None)
    validated = validate_plugin_tables(make_plugin_manager(settings, [ListPlugin()], entry_points=False), settings)
    assert validated["lists"] == ListSettings(names=["a", "b"], label='["kept as text"]')
