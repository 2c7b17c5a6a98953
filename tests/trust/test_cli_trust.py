"""``gateway catalog refresh`` and ``gateway catalog history`` as real subprocesses on a config whose schema
versions live in ``catalog.state_path`` (so they survive from one command to the next). Three CLI runs: about 5-20 s, by load."""

from __future__ import annotations

import json
import subprocess

import pyarrow as pa
import pyarrow.parquet as pq

from tests.test_cli import cli_env, gateway_command
from tests.trust.conftest import write_lake


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*gateway_command(), *args], check=False, capture_output=True, text=True, env=cli_env(),
                          timeout=120)


def test_refresh_and_history_across_runs(tmp_path):
    lake = write_lake(tmp_path / "lake")
    config = tmp_path / "gateway.toml"
    config.write_text('[catalog]\nstate_path = "state/drift.sqlite"\n\n'
                      '[[sources]]\nname = "lake"\nkind = "parquet"\npath = "lake"\n')
    first = _cli("catalog", "history", "lake.nation", "--config", str(config))  # refreshes: the baseline
    assert first.returncode == 0 and "1 version(s)" in first.stdout, first.stderr
    pq.write_table(pa.table({"n_nationkey": pa.array([0], pa.int64()), "n_name": ["A"]}), lake / "nation.parquet")
    changed = _cli("catalog", "refresh", "lake", "--config", str(config))
    assert changed.returncode == 0, changed.stderr
    (line,) = changed.stdout.splitlines()
    change = json.loads(line)
    assert (change["table_name"], change["kind"], change["old_type"], change["new_type"], change["widening"]) == \
        ("lake.main.nation", "column_retyped", "int32", "int64", True)
    history = _cli("catalog", "history", "lake.main.nation", "--json", "--config", str(config))
    assert history.returncode == 0, history.stderr
    versions = json.loads(history.stdout)["versions"]
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[1]["columns"][0] == {"name": "n_nationkey", "type": "int64", "nullable": True}


def test_mock_writes_and_registers(tmp_path):
    lake = write_lake(tmp_path / "lake")
    config = tmp_path / "gateway.toml"
    config.write_text('[[sources]]\nname = "lake"\nkind = "parquet"\npath = "lake"\n')
    made = _cli("mock", "lake.customer", "lake.nation", "--rows", "50", "--out", str(tmp_path / "mock"),
                "--register", "mocked", "--config", str(config))
    assert made.returncode == 0, made.stderr
    customers = pq.read_table(tmp_path / "mock" / "customer.parquet").to_pylist()
    assert len(customers) == 50 and all(c["c_name"].startswith("Person ") for c in customers)
    assert 'name = "mocked"' in config.read_text()
    real = {r["c_name"] for r in pq.read_table(lake / "customer.parquet").to_pylist()}
    assert not real & {c["c_name"] for c in customers}
