"""Where each llm_id goes: the [models] section, three-part ids, the OPENAI_BASE_URL fallback."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskcanvas.config import ConfigError, Settings
from taskcanvas.llm.anthropic import AnthropicChatModel
from taskcanvas.llm.config import ModelRegistry, ModelRow
from taskcanvas.llm.errors import ModelNotConfigured
from taskcanvas.llm.openai import OpenAIChatModel
from taskcanvas.llm.retry import RetryPolicy
from taskcanvas.testing import Rule, ScriptedModelServer

CONFIG = """
[models]
default = "deepseek-chat@DeepSeek"

[models."deepseek-chat@DeepSeek"]
provider = "openai"
base_url = "https://api.deepseek.com/v1/"
model = "deepseek-chat"
api_key_env = "DEEPSEEK_API_KEY"

[models."claude@Anthropic"]
provider = "anthropic"
model = "claude-sonnet-4-5"
api_key = "sk-direct"
timeout = 30
max_retries = 5
delay_after_error = 0.5
drop_options = ["top_p"]
max_length = 200000
"""


def registry(tmp_path: Path, toml: str | None = CONFIG, **env: str) -> ModelRegistry:
    environ = {"TASKCANVAS_DATA_DIR": str(tmp_path), "DEEPSEEK_API_KEY": "sk-deepseek", **env}
    if toml is not None:
        (tmp_path / "config.toml").write_text(toml)
    return ModelRegistry.from_settings(Settings.load(environ))


def test_exact_ids_match_their_table(tmp_path: Path) -> None:
    models = registry(tmp_path)
    deepseek = models.resolve("deepseek-chat@DeepSeek")
    assert (deepseek.provider, deepseek.model, deepseek.base_url) == ("openai", "deepseek-chat",
                                                                     "https://api.deepseek.com/v1")
    assert deepseek.api_key == "sk-deepseek" and deepseek.key_source == "env DEEPSEEK_API_KEY"
    assert "sk-deepseek" not in repr(deepseek)
    claude = models.resolve("claude@Anthropic")
    assert (claude.provider, claude.model, claude.base_url, claude.key_source) == (
        "anthropic", "claude-sonnet-4-5", None, "direct")
    assert (claude.timeout, claude.retry, claude.drop_options) == (30.0, RetryPolicy(5, 0.5), ("top_p",))
    assert (claude.max_length, deepseek.max_length) == (200000, 0)
    assert models.serves("claude@Anthropic") and not models.serves("gpt-4o@OpenAI")


def test_three_part_ids_also_match_name_at_factory(tmp_path: Path) -> None:
    models = registry(tmp_path, CONFIG + '\n[models."deepseek-chat@work@DeepSeek"]\nprovider = "openai"\n'
                                         'base_url = "http://127.0.0.1:9/v1"\nmodel = "exact-one"\n')
    assert models.resolve("deepseek-chat@home@DeepSeek").model == "deepseek-chat"
    assert models.resolve("deepseek-chat@work@DeepSeek").model == "exact-one"  # an exact match wins
    assert not models.serves("deepseek-chat@home@Other")
    assert not models.serves("deepseek-chat")


def test_an_empty_llm_id_uses_the_default(tmp_path: Path) -> None:
    models = registry(tmp_path)
    assert models.resolve("").model == "deepseek-chat"
    assert models.resolve("  ").model == "deepseek-chat"
    assert models.default == "deepseek-chat@DeepSeek"


def test_openai_base_url_serves_every_other_id(tmp_path: Path) -> None:
    models = registry(tmp_path, OPENAI_BASE_URL="http://127.0.0.1:11434/v1/", OPENAI_API_KEY="sk-env")
    fallback = models.resolve("qwen2.5:7b@Ollama")
    assert (fallback.provider, fallback.model, fallback.base_url, fallback.api_key, fallback.source) == (
        "openai", "qwen2.5:7b", "http://127.0.0.1:11434/v1", "sk-env", "OPENAI_BASE_URL")
    assert models.resolve("llama3@local@Ollama").model == "llama3"
    assert models.resolve("gpt-4o").model == "gpt-4o"
    assert models.resolve("deepseek-chat@DeepSeek").base_url == "https://api.deepseek.com/v1"  # the file first
    assert models.fallback_base_url == "http://127.0.0.1:11434/v1"


def test_an_empty_id_goes_to_openai_model_when_there_is_no_default(tmp_path: Path) -> None:
    models = registry(tmp_path, None, OPENAI_BASE_URL="http://127.0.0.1:8000/v1", OPENAI_MODEL="served-model")
    entry = models.resolve("")
    assert (entry.model, entry.key_source) == ("served-model", "missing")
    without_model = registry(tmp_path, None, OPENAI_BASE_URL="http://127.0.0.1:8000/v1")
    with pytest.raises(ModelNotConfigured, match="OPENAI_MODEL"):
        without_model.resolve("")
    assert without_model.serves("anything@Else")


def test_the_default_may_name_a_fallback_model(tmp_path: Path) -> None:
    models = registry(tmp_path, '[models]\ndefault = "mistral@Ollama"\n', OPENAI_BASE_URL="http://127.0.0.1:1/v1")
    assert models.resolve("").model == "mistral"


def test_an_unserved_id_says_how_to_configure_it(tmp_path: Path) -> None:
    models = registry(tmp_path)
    with pytest.raises(ModelNotConfigured) as caught:
        models.get("gpt-4o@OpenAI")
    path = tmp_path / "config.toml"
    assert str(caught.value) == (f"no model is configured for llm_id 'gpt-4o@OpenAI': add [models.\"gpt-4o@OpenAI\"] "
                                 f"to {path} or set OPENAI_BASE_URL")
    assert caught.value.llm_id == "gpt-4o@OpenAI"


def test_nothing_configured_explains_both_ways(tmp_path: Path) -> None:
    models = registry(tmp_path, None)
    with pytest.raises(ModelNotConfigured, match=r'add \[models\."x@Y"\] to the configuration file'):
        models.get("x@Y")
    with pytest.raises(ModelNotConfigured, match=r"set default = .* or set OPENAI_BASE_URL and OPENAI_MODEL"):
        models.get("")
    assert models.describe() == []


def test_an_unset_key_variable_means_not_served(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(CONFIG)
    models = ModelRegistry.from_settings(Settings.load({"TASKCANVAS_DATA_DIR": str(tmp_path)}))
    assert not models.serves("deepseek-chat@DeepSeek")
    with pytest.raises(ModelNotConfigured, match="DEEPSEEK_API_KEY \\(api_key_env\\), which is not set"):
        models.get("deepseek-chat@DeepSeek")
    assert models.describe()[0].key == "env DEEPSEEK_API_KEY (not set)"


def test_get_builds_the_provider_model_once_per_target(tmp_path: Path) -> None:
    models = registry(tmp_path)
    deepseek = models.get("deepseek-chat@DeepSeek")
    assert isinstance(deepseek, OpenAIChatModel) and deepseek.name == "deepseek-chat"
    assert models.get("deepseek-chat@x@DeepSeek") is deepseek
    assert models.get("") is deepseek
    claude = models.get("claude@Anthropic")
    assert isinstance(claude, AnthropicChatModel) and claude.max_length == 200000 and deepseek.max_length == 0


def test_describe_lists_ids_the_empty_id_and_the_fallback(tmp_path: Path) -> None:
    models = registry(tmp_path, OPENAI_BASE_URL="http://127.0.0.1:11434/v1")
    assert models.describe() == [
        ModelRow("deepseek-chat@DeepSeek", "openai", "https://api.deepseek.com/v1", "deepseek-chat",
                 "env DEEPSEEK_API_KEY"),
        ModelRow("claude@Anthropic", "anthropic", "https://api.anthropic.com", "claude-sonnet-4-5", "direct"),
        ModelRow("", "openai", "https://api.deepseek.com/v1", "deepseek-chat", "env DEEPSEEK_API_KEY"),
        ModelRow("*", "openai", "http://127.0.0.1:11434/v1", "<name before @>", "missing"),
    ]


def test_section_defaults_apply_to_every_model(tmp_path: Path) -> None:
    models = registry(tmp_path, '[models]\ntimeout = 12\nmax_retries = 0\n[models."a@B"]\nbase_url = "http://h/v1"\n'
                                'model = "a"\n', OPENAI_BASE_URL="http://127.0.0.1:1/v1")
    for llm_id in ("a@B", "other@X"):
        entry = models.resolve(llm_id)
        assert (entry.provider, entry.timeout, entry.retry.max_retries) == ("openai", 12.0, 0)


@pytest.mark.parametrize("toml, words", [
    ('[models."x@Y"]\nprovider = "gemini"\nmodel = "m"\n',
     '[models."x@Y"] provider in .*config.toml: unknown provider \'gemini\' (use openai or anthropic)'),
    ('[models."x@Y"]\nmodel = "m"\n', '[models."x@Y"] base_url in .*: missing'),
    ('[models."x@Y"]\nbase_url = "http://h/v1"\n', '[models."x@Y"] model in .*: missing'),
    ('[models."x@Y"]\nbase_url = "http://h/v1"\nmodel = "m"\napi_keyenv = "K"\n',
     '[models."x@Y"] api_keyenv in .*: unknown key'),
    ('[models."x@Y"]\nbase_url = "http://h/v1"\nmodel = "m"\ntimeout = "slow"\n', '[models."x@Y"] timeout'),
    ('[models."x@Y"]\nbase_url = "http://h/v1"\nmodel = "m"\nmax_retries = -1\n', "max_retries"),
    ('[models."x@Y"]\nbase_url = "http://h/v1"\nmodel = "m"\ndrop_options = ["seed"]\n', "drop_options"),
    ('[models."x@Y"]\nbase_url = 3\nmodel = "m"\n', "base_url .*must be a non-empty string"),
    ('[models."x@Y"]\nbase_url = "http://h/v1"\nmodel = "m"\nmax_length = "big"\n', "max_length .*context window"),
    ('[models]\ndefault = "nowhere@X"\n', "default = 'nowhere@X' in .*names no model"),
    ('[models]\ndefault = 3\n', "default .*must be an llm_id"),
    ('[models]\nfallback = "x"\n', "[models] fallback in .*: unknown setting"),
    ("models = 3\n", "[models] in the configuration must be a table"),
])
def test_unusable_configuration_names_table_and_key(tmp_path: Path, toml: str, words: str) -> None:
    import re

    with pytest.raises(ConfigError, match=re.escape(words).replace(r"\.\*", ".*")):
        registry(tmp_path, toml)


async def test_a_configured_model_talks_to_its_endpoint_with_its_key(tmp_path: Path) -> None:
    with ScriptedModelServer([Rule("hello from the server")], api_key="sk-deepseek") as server:
        models = registry(tmp_path, f'[models."local@Test"]\nbase_url = "{server.base_url}"\nmodel = "m1"\n'
                                    'api_key_env = "DEEPSEEK_API_KEY"\n')
        answer = await models.get("local@Test").chat([{"role": "user", "content": "hi"}])
        assert answer.content == "hello from the server"
        assert server.last_request["model"] == "m1"
        await models.aclose()


async def test_the_fallback_talks_to_openai_base_url(tmp_path: Path) -> None:
    with ScriptedModelServer() as server:
        models = registry(tmp_path, None, OPENAI_BASE_URL=server.base_url)
        answer = await models.get("qwen@Ollama").chat([{"role": "user", "content": "echo me"}])
        assert answer.content == "echo me" and server.last_request["model"] == "qwen"
        await models.aclose()


async def test_a_refused_key_names_where_it_came_from(tmp_path: Path) -> None:
    with ScriptedModelServer(api_key="the-real-key") as server:
        models = registry(tmp_path, f'[models."local@Test"]\nbase_url = "{server.base_url}"\nmodel = "m1"\n'
                                    'api_key_env = "DEEPSEEK_API_KEY"\n')
        from taskcanvas.llm.errors import ModelAuthError

        with pytest.raises(ModelAuthError, match=r"check the environment variable DEEPSEEK_API_KEY \(api_key_env "
                                                 r'of \[models."local@Test"\] in .*config.toml\)') as caught:
            await models.get("local@Test").chat([{"role": "user", "content": "hi"}])
        assert "sk-deepseek" not in str(caught.value)
        await models.aclose()
