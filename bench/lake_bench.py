"""TPC-H with lineitem and orders as Delta tables on a local S3 server (moto's stand-alone server, a child process)
against the same tables as local Parquet files, and against DuckDB reading them; the other six tables are local
Parquet files in every run. All three answer the same 22 queries; every answer is checked against DataFusion
over the data in memory.

    python bench/lake_bench.py [--scale-factor 1] [--queries 1,3,5] [--repeat 3] [--out FILE] [--write-readme]

Contenders (one warm-up run, then ``--repeat`` timed runs; the median is reported):
- ``delta-s3``: a QueryEngine with a ``delta`` source on ``s3://bucket/tpch`` (the S3 server's endpoint and keys)
  and a ``parquet`` source for the rest;
- ``parquet-local``: the same engine shape with lineitem and orders as local Parquet (lineitem one file per ship
  year);
- ``duckdb``: DuckDB over the local Delta copy (its delta extension from the ``duckdb-extension-delta`` wheel,
  loaded by path) and the Parquet files.
The ratios are delta-s3 over each of the others (above 1: the Delta-on-S3 gateway is slower).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyarrow.compute as pc  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from datafusion import SessionContext  # noqa: E402

from bench.common import (  # noqa: E402
    duckdb_extension_path,
    free_port,
    geomean,
    median,
    same_rows,
    write_readme_section,
    write_results,
)
from gateway.execution.engine import QueryEngine  # noqa: E402
from gateway.settings import settings_from_dict  # noqa: E402
from tests import tpch  # noqa: E402

IN_DELTA = ("lineitem", "orders")
KEY, ACCESS = "bench", "bench-secret"


def start_s3(folder: Path) -> tuple[subprocess.Popen, str]:
    import boto3
    import httpx

    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=(folder / "moto.log").open("w"), stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(f"{endpoint}/moto-api/", timeout=1.0)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=KEY,
                 aws_secret_access_key=ACCESS).create_bucket(Bucket="tpch")
    return process, endpoint


def write_data(tables: dict, folder: Path, endpoint: str) -> None:
    """lineitem (partitioned by ship year) and orders as Delta on S3 and locally; all tables as Parquet."""
    from deltalake import write_deltalake

    storage = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": ACCESS,
               "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true", "AWS_S3_ALLOW_UNSAFE_RENAME": "true"}
    lineitem = tables["lineitem"]
    years = pc.year(lineitem.column("l_shipdate"))
    for name, table, parts in (("lineitem", lineitem.append_column("l_shipyear", years), ["l_shipyear"]),
                               ("orders", tables["orders"], None)):
        write_deltalake(f"s3://tpch/tpch/{name}", table, partition_by=parts, storage_options=storage)
        write_deltalake(str(folder / "delta" / name), table, partition_by=parts)
    tpch.write_parquet(folder / "pq", tables)  # lineitem by year, nation, region
    (folder / "rest").mkdir()
    for name, table in tables.items():
        if name != "lineitem":
            target = folder / ("pq" if name == "orders" else "rest") / f"{name}.parquet"
            pq.write_table(table, target)


def engines(folder: Path, endpoint: str) -> dict[str, tuple[QueryEngine, dict[str, str]]]:
    delta = settings_from_dict({"sources": [
        {"name": "lake", "kind": "delta", "path": "s3://tpch/tpch", "endpoint": endpoint, "region": "us-east-1",
         "access_key_id": KEY, "secret_access_key": ACCESS},
        {"name": "rest", "kind": "parquet", "path": str(folder / "rest")}]}, base_dir=folder)
    local = settings_from_dict({"sources": [
        {"name": "lake", "kind": "parquet", "path": str(folder / "pq")},
        {"name": "rest", "kind": "parquet", "path": str(folder / "rest")}]}, base_dir=folder)
    names = {t: f"lake.main.{t}" if t in IN_DELTA else f"rest.main.{t}" for t in tpch.PLACEMENT}
    return {"delta-s3": (QueryEngine(delta), names), "parquet-local": (QueryEngine(local), names)}


def duckdb_run(folder: Path):
    import duckdb

    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{duckdb_extension_path('duckdb_extension_delta', 'delta')}'")
    for name in tpch.PLACEMENT:
        source = f"delta_scan('{folder / 'delta' / name}')" if name in IN_DELTA else \
            f"read_parquet('{folder / 'rest' / (name + '.parquet')}')"
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM {source}")
    return lambda sql: con.execute(sql).fetch_arrow_table()


def timed(run, repeat: int) -> tuple[float, object]:
    result = run()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale-factor", type=float, default=1.0)
    parser.add_argument("--queries", default=",".join(str(i) for i in range(1, 23)))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=None)
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args()
    numbers = [int(q) for q in args.queries.split(",")]
    folder = Path(tempfile.mkdtemp(prefix="gw_lake_bench_"))
    tables, queries = tpch.generate(args.scale_factor)
    s3, endpoint = start_s3(folder)
    try:
        write_data(tables, folder, endpoint)
        reference = SessionContext()
        for name, table in tables.items():
            reference.register_record_batches(name, [table.to_batches()])
        contenders = {name: (lambda sql, e=engine, n=names: e.execute(tpch.qualify_tables(sql, n)).reader.read_all())
                      for name, (engine, names) in engines(folder, endpoint).items()}
        contenders["duckdb"] = duckdb_run(folder)
        rows = []
        for number in numbers:
            want = reference.sql(queries[number]).to_arrow_table()
            row = {"query": number}
            for name, run in contenders.items():
                seconds, got = timed(lambda r=run, sql=queries[number]: r(sql), args.repeat)
                problem = same_rows(got, want)
                row[name] = round(seconds, 4)
                if problem:
                    row[f"{name}_wrong"] = problem
            rows.append(row)
            print(row, flush=True)
    finally:
        s3.terminate()
        s3.wait(timeout=10)
    ratios = {other: geomean([r["delta-s3"] / r[other] for r in rows]) for other in ("parquet-local", "duckdb")}
    result = {"benchmark": "lake", "scale_factor": args.scale_factor, "repeat": args.repeat, "rows": rows,
              "geomean_ratio_delta_s3_over": ratios, "unit": "median seconds per query"}
    out = args.out or ROOT / "bench" / "results" / f"lake-sf{args.scale_factor:g}.json"
    write_results(out, result)
    if args.write_readme:
        lines = ["| query | delta-s3 (s) | parquet-local (s) | duckdb (s) | delta-s3 / parquet | delta-s3 / duckdb |",
                 "|---|---|---|---|---|---|"]
        for r in rows:
            lines.append(f"| Q{r['query']} | {r['delta-s3']:.3f} | {r['parquet-local']:.3f} | {r['duckdb']:.3f} | "
                         f"{r['delta-s3'] / r['parquet-local']:.2f}x | {r['delta-s3'] / r['duckdb']:.2f}x |")
        lines.append(f"| **geomean** | | | | **{ratios['parquet-local']:.2f}x** | **{ratios['duckdb']:.2f}x** |")
        write_readme_section(ROOT / "README.md", f"lake-sf{args.scale_factor:g}", "\n".join(lines),
                             "## Lakehouse benchmark")


if __name__ == "__main__":
    main()
