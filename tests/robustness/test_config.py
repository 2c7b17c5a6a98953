"""Config mistakes are caught at start with the key path and the reason; a source whose file or folder is
missing does not stop the gateway.

- Unknown keys are rejected at every level, with the nearest valid name (``sources[1].partiton_column``).
- Each source kind takes its own options (``gateway.settings.SOURCE_OPTIONS``); another kind's option is
  rejected, and a kind's own options reach its connector (a ``;``-separated CSV without a header is read).
- ``${}`` and other malformed environment references are rejected (they were kept as literal text).
- ``gateway serve`` with a missing Parquet folder and a missing SQLite file logs a warning naming each, serves
  the other sources, answers 503 naming the missing source (without the server path), and reads the folder
  once it appears.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gateway.errors import ConfigError
from gateway.execution.engine import QueryEngine
from gateway.settings import load_settings, settings_from_dict
from tests.demo_support import customers_db, free_port, wait_for_health, write_demo_config
from tests.test_cli import _stop, cli_env, gateway_command

SQLITE = {"name": "crm", "kind": "sqlite", "path": "crm.db"}


def config_error(raw: dict, folder: Path) -> ConfigError:
    with pytest.raises(ConfigError) as excinfo:
        settings_from_dict(raw, base_dir=folder)
    return excinfo.value


def test_misspelled_source_option_names_key_path_and_nearest_name(tmp_path):
    pg = {"name": "pg", "kind": "postgresql", "uri": "postgresql://reader@127.0.0.1/db", "partiton_column": "day"}
    error = config_error({"sources": [SQLITE, pg]}, tmp_path)
    assert error.details["key"] == "sources[1].partiton_column"
    assert "config: sources[1].partiton_column: unknown key 'partiton_column'; did you mean 'partition_column'?" \
        in error.message


@pytest.mark.parametrize(("source", "key"), [
    ({**SQLITE, "has_header": False}, "has_header"),                              # a CSV option
    ({"name": "lake", "kind": "parquet", "path": "lake", "partition_column": "d"}, "partition_column"),
    ({"name": "shop", "kind": "mysql", "uri": "mysql://r@h/db", "pool_size": 8}, "pool_size"),  # no pool
    ({"name": "lake", "kind": "csv", "path": "lake", "uri": "postgresql://h/db"}, "uri"),
])
def test_option_of_another_kind_is_rejected_naming_the_options_it_takes(tmp_path, source, key):
    error = config_error({"sources": [source]}, tmp_path)
    assert error.details["key"] == f"sources[0].{key}"
    assert f"sources[0].{key}: not an option of a '{source['kind']}' source; it takes: name, kind" in error.message


@pytest.mark.parametrize(("raw", "key", "nearest"), [
    ({"server": {"hots": "0.0.0.0"}}, "server.hots", "host"),
    ({"auth": {"enabled": True, "users": [{"name": "a", "pasword": "x"}]}}, "auth.users[0].pasword", "password"),
    ({"auth": {"api_tokens": [{"name": "t", "tokn": "x" * 20}]}}, "auth.api_tokens[0].tokn", "token"),
    ({"auth": {"login_max_failure": 3}}, "auth.login_max_failure", "login_max_failures"),
    ({"catalog": {"refresh_intervall_s": 5}}, "catalog.refresh_intervall_s", "refresh_interval_s"),
    ({"limits": {"max_in_lst": 5}}, "limits.max_in_lst", "max_in_list"),
    ({"cache": {"disk_pth": "c"}}, "cache.disk_pth", "disk_path"),
    ({"soruces": []}, "soruces", "sources"),
])
def test_unknown_key_at_every_level_names_key_path_and_nearest_name(tmp_path, raw, key, nearest):
    error = config_error(raw, tmp_path)
    assert error.details["key"] == key
    assert f"{key}: unknown key '{key.rsplit('.', 1)[-1]}'; did you mean '{nearest}'?" in error.message


def test_unknown_key_without_a_near_name_lists_the_valid_keys(tmp_path):
    error = config_error({"sources": [{"name": "lake", "kind": "parquet", "path": "lake", "colour": 1}]}, tmp_path)
    assert error.details["key"] == "sources[0].colour"
    assert error.message.endswith(
        "unknown key 'colour'; valid keys here: name, kind, path, cache_ttl_s, cache_fingerprint, endpoint, region, "
        "access_key_id, secret_access_key, session_token, account_name, account_key, sas_token, client_id, "
        "client_secret, tenant_id, credentials_file, anonymous, follow_symlinks")


def test_every_problem_is_listed_first_one_in_the_key(tmp_path):
    error = config_error({"server": {"hots": "x"}, "limits": {"max_in_lst": 1}}, tmp_path)
    lines = error.message.splitlines()
    assert error.details["key"] == "server.hots"
    assert lines == ["config: server.hots: unknown key 'hots'; did you mean 'host'?",
                     "config: limits.max_in_lst: unknown key 'max_in_lst'; did you mean 'max_in_list'?"]


@pytest.mark.parametrize(("written", "shown"), [
    ("${}", "'${}' is not an environment reference"),
    ("${1PASSWORD}", "'${1PASSWORD}' is not an environment reference"),
    ("${ PG_PASSWORD }", "'${ PG_PASSWORD }' is not an environment reference"),
    ("${PG_PASSWORD", "an unterminated '${' is not an environment reference"),
])
def test_malformed_environment_reference_is_rejected(tmp_path, monkeypatch, written, shown):
    monkeypatch.setenv("PG_PASSWORD", "s3cret-value")
    config = tmp_path / "gateway.toml"
    config.write_text(f'[[sources]]\nname = "pg"\nkind = "postgresql"\nuri = "postgresql://u:{written}@h/db"\n')
    with pytest.raises(ConfigError) as excinfo:
        load_settings(config)
    assert excinfo.value.details["key"] == "sources[0].uri"
    assert f"sources[0].uri: {shown}; write ${{NAME}}" in excinfo.value.message
    assert "s3cret-value" not in excinfo.value.message


def test_well_formed_environment_reference_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("PG_PASSWORD", "s3cret-value")
    raw = {"sources": [{"name": "pg", "kind": "postgresql", "uri": "postgresql://u:${PG_PASSWORD}@h/db"}]}
    assert settings_from_dict(raw, base_dir=tmp_path).sources[0].uri == "postgresql://u:s3cret-value@h/db"


def test_csv_options_reach_the_connector(tmp_path):
    (tmp_path / "lake").mkdir()
    (tmp_path / "lake" / "points.csv").write_text("1;north\n2;south\n")
    source = {"name": "lake", "kind": "csv", "path": "lake", "has_header": False, "delimiter": ";"}
    gateway = QueryEngine(settings_from_dict({"sources": [source]}, base_dir=tmp_path))
    try:
        table = gateway.execute("SELECT * FROM lake.points ORDER BY 1").reader.read_all()
    finally:
        gateway.close()
    assert table.to_pylist() == [{"column_1": 1, "column_2": "north"}, {"column_1": 2, "column_2": "south"}]


def test_bad_option_value_names_the_key(tmp_path):
    error = config_error({"sources": [{"name": "lake", "kind": "csv", "path": "lake", "delimiter": ";;"}]}, tmp_path)
    assert error.details["key"] == "sources[0].delimiter"
    assert "at most 1 character" in error.message


def test_serve_starts_with_missing_source_paths_and_reads_them_once_they_appear(tmp_path):
    demo = write_demo_config(tmp_path / "demo")
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'[[sources]]\nname = "demo_db"\nkind = "sqlite"\npath = "{demo.parent / "demo_data" / "demo.db"}"\n'
        '[[sources]]\nname = "lake"\nkind = "parquet"\npath = "not_yet/lake"\n'
        '[[sources]]\nname = "crm"\nkind = "sqlite"\npath = "not_yet/crm.db"\n'
    )
    flight_port, http_port = free_port(), free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*gateway_command(), "serve", "--config", str(config), "--flight-port", str(flight_port),
             "--http-port", str(http_port)], stdout=subprocess.DEVNULL, stderr=log, env=cli_env())
    base = f"http://127.0.0.1:{http_port}"
    try:
        assert wait_for_health(base, 30.0, alive=lambda: process.poll() is None)["status"] == "ok"
        assert [s["name"] for s in httpx.get(f"{base}/v1/sources", timeout=30).json()] == ["crm", "demo_db", "lake"]

        def query(sql: str) -> httpx.Response:
            return httpx.post(f"{base}/v1/query", json={"sql": sql}, timeout=30)

        answer = query("SELECT count(*) AS n FROM demo_db.customers")
        assert answer.json()["rows"] == [[len(customers_db(demo))]]
        down = query("SELECT * FROM lake.points")
        assert down.status_code == 503
        assert down.json()["error"]["message"].startswith("source 'lake' is unavailable: ")
        assert str(tmp_path) not in down.text

        (tmp_path / "not_yet" / "lake").mkdir(parents=True)
        pq.write_table(pa.table({"x": [1, 2, 3]}), tmp_path / "not_yet" / "lake" / "points.parquet")
        assert query("SELECT sum(x) AS s FROM lake.points").json()["rows"] == [[6]]
    finally:
        assert _stop(process) == 0

    logs = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    warned = {entry["source"]: entry["msg"] for entry in logs
              if entry["level"] == "warning" and entry["logger"] == "gateway.settings"}
    assert warned == {
        "lake": "source 'lake' is unavailable at start: its path (a folder) does not exist; starting without it",
        "crm": "source 'crm' is unavailable at start: its path (a file) does not exist; starting without it",
    }
