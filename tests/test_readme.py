"""The README opens with the two set-up commands, and .ci/run runs the same test command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _commands() -> list[str]:
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text())[:2]


def test_readme_opens_with_serve_and_test_commands():
    serve, test = _commands()
    assert serve.endswith("gateway serve") and "pip install" in serve
    assert "pytest" in test and "pip install" in test


def test_ci_runs_the_readme_test_command():
    _, test = _commands()
    ci = (ROOT / ".ci" / "run").read_text()
    assert test in ci.splitlines()


def test_default_config_is_the_demo_catalog():
    from gateway.settings import load_settings

    settings = load_settings()
    assert settings.demo
    assert [s.name for s in settings.sources] == ["demo_db", "demo_lake"]
    assert (settings.server.flight_port, settings.server.http_port) == (8815, 8080)


def test_example_config_is_valid(monkeypatch):
    import re

    from gateway.settings import load_settings

    path = ROOT / "config" / "example.toml"
    for name in set(re.findall(r"\$\{(\w+)\}", path.read_text())):
        monkeypatch.setenv(name, "x" * 24)
    settings = load_settings(path)
    assert {s.kind for s in settings.sources} == {"postgresql", "parquet", "sqlite", "mysql"}
    assert settings.auth.enabled and settings.cache.admit_after == 2
