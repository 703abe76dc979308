"""``taskcanvas models list``, invoked through its typer sub-app."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from taskcanvas.cli import models

CONFIG = """
[models]
default = "deepseek-chat@DeepSeek"

[models."deepseek-chat@DeepSeek"]
base_url = "https://api.deepseek.com/v1"
model = "deepseek-chat"
api_key_env = "DEEPSEEK_API_KEY"

[models."claude@Anthropic"]
provider = "anthropic"
model = "claude-sonnet-4-5"
api_key = "sk-never-printed"
"""

UNSET = {"OPENAI_BASE_URL": None, "OPENAI_API_KEY": None, "OPENAI_MODEL": None, "TASKCANVAS_CONFIG": None,
         "DEEPSEEK_API_KEY": None}


def invoke(tmp_path: Path, config: str | None, **env: str):  # type: ignore[no-untyped-def]
    if config is not None:
        (tmp_path / "config.toml").write_text(config)
    runner = CliRunner()
    return runner.invoke(models.app, ["list"], env={**UNSET, "TASKCANVAS_DATA_DIR": str(tmp_path), **env})


def test_lists_each_id_and_where_it_goes(tmp_path: Path) -> None:
    result = invoke(tmp_path, CONFIG, DEEPSEEK_API_KEY="sk-deepseek-secret")
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"Configuration: {tmp_path / 'config.toml'}" in out
    lines = out.splitlines()
    deepseek = next(line for line in lines if line.startswith("deepseek-chat@DeepSeek"))
    assert "openai" in deepseek and "https://api.deepseek.com/v1" in deepseek and "env DEEPSEEK_API_KEY" in deepseek
    claude = next(line for line in lines if line.startswith("claude@Anthropic"))
    assert "anthropic" in claude and "https://api.anthropic.com" in claude and "direct" in claude
    assert any(line.startswith("(empty llm_id)") and "deepseek-chat" in line for line in lines)
    assert "A canvas that leaves llm_id empty uses deepseek-chat@DeepSeek." in out
    assert "OPENAI_BASE_URL" not in out
    assert "sk-never-printed" not in out and "sk-deepseek-secret" not in out


def test_a_missing_key_variable_shows(tmp_path: Path) -> None:
    result = invoke(tmp_path, CONFIG)
    assert result.exit_code == 0
    assert "env DEEPSEEK_API_KEY (not set)" in result.output


def test_explains_the_openai_base_url_fallback(tmp_path: Path) -> None:
    result = invoke(tmp_path, None, OPENAI_BASE_URL="http://127.0.0.1:11434/v1", OPENAI_MODEL="llama3")
    assert result.exit_code == 0, result.output
    assert "Configuration: none (environment only)" in result.output
    assert any(line.startswith("(any other llm_id)") and "http://127.0.0.1:11434/v1" in line
               for line in result.output.splitlines())
    assert "OPENAI_BASE_URL is set: any llm_id not listed goes to http://127.0.0.1:11434/v1" in result.output


def test_nothing_configured_says_how_to_configure(tmp_path: Path) -> None:
    result = invoke(tmp_path, None)
    assert result.exit_code == 0
    assert "No models are configured" in result.output and "OPENAI_BASE_URL" in result.output


def test_an_unusable_configuration_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = invoke(tmp_path, '[models."x@Y"]\nprovider = "gemini"\nmodel = "m"\n')
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: [models.\"x@Y\"] provider")
    assert "Traceback" not in result.output


def test_an_invalid_toml_file_is_exit_2(tmp_path: Path) -> None:
    result = invoke(tmp_path, "[models\n")
    assert result.exit_code == 2
    assert "not valid TOML" in result.output


def test_values_are_not_read_as_markup(tmp_path: Path) -> None:
    result = invoke(tmp_path, '[models."[bold]x[/bold]@Y"]\nbase_url = "http://h/v1"\nmodel = "[red]m"\n')
    assert result.exit_code == 0, result.output
    assert "[bold]x[/bold]@Y" in result.output and "[red]m" in result.output
