"""The ``gateway`` command line: serve, query, explain."""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gateway.errors import GatewayError
from gateway.settings import load_settings, prepare

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Federated SQL gateway.")
ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="Config file (default config/gateway.toml).")]
log = logging.getLogger("gateway")


def _fail(exc: GatewayError) -> None:
    console = Console(stderr=True, soft_wrap=True)
    console.print(f"[bold red]error[/] ({exc.code}): {escape(exc.message)}", highlight=False)
    raise typer.Exit(2)


@contextlib.contextmanager
def _gateway(config: Path | None) -> Iterator:
    """An in-process gateway on ``config``, closed on the way out: its fragment reader threads are stopped and
    joined before the interpreter exits (one still inside pyarrow/DataFusion code then aborts the process)."""
    from gateway.execution.engine import QueryEngine

    gateway = QueryEngine(prepare(load_settings(config)))
    try:
        yield gateway
    finally:
        gateway.close()


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (default from config).")] = None,
    flight_port: Annotated[int | None, typer.Option(help="Flight SQL port (default 8815).")] = None,
    http_port: Annotated[int | None, typer.Option(help="REST port (default 8080).")] = None,
) -> None:
    """Start the Flight SQL server and the REST API on the configured sources."""
    from gateway.logs import setup_logging
    from gateway.server import run

    setup_logging()
    try:
        settings = prepare(load_settings(config))
    except GatewayError as exc:
        _fail(exc)
    server = settings.server
    server.host = host or server.host
    server.flight_port = server.flight_port if flight_port is None else flight_port
    server.http_port = server.http_port if http_port is None else http_port
    run(settings)


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="The SQL query.")],
    config: ConfigOption = None,
    format: Annotated[str, typer.Option("--format", "-f", help="table, csv or json.")] = "table",
    timeout: Annotated[float | None, typer.Option(
        "--timeout", help="Cancel the query after this many seconds (default: limits.query_timeout_s).")] = None,
) -> None:
    """Run one query in-process and print the result."""
    if format not in ("table", "csv", "json"):
        raise typer.BadParameter("format must be table, csv or json", param_hint="--format")
    try:
        with _gateway(config) as gateway:
            table = gateway.execute(sql, timeout_s=timeout).reader.read_all()
    except GatewayError as exc:
        _fail(exc)
    rows = table.to_pylist()
    if format == "json":
        json.dump(rows, sys.stdout, default=str)
        sys.stdout.write("\n")
    elif format == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(table.column_names)
        writer.writerows([list(r.values()) for r in rows])
    else:
        out = Table(*table.column_names)
        for r in rows:
            out.add_row(*(escape("NULL" if v is None else str(v)) for v in r.values()))
        # piped output is not cut to 80 columns: every value is printed whole
        console = Console() if sys.stdout.isatty() else Console(width=100_000)
        console.print(out)


@app.command()
def explain(
    sql: Annotated[str, typer.Argument(help="The SQL query.")],
    config: ConfigOption = None,
    analyze: Annotated[bool, typer.Option(help="Run it and show rows/bytes per fragment.")] = False,
) -> None:
    """Print the federated plan: each fragment's pushed SQL and the residual DataFusion plan."""
    try:
        with _gateway(config) as gateway:
            text = gateway.explain(sql, analyze=analyze)
    except GatewayError as exc:
        _fail(exc)
    print(text)


catalog_app = typer.Typer(no_args_is_help=True, help="The catalog of the configured sources.")
app.add_typer(catalog_app, name="catalog")


@catalog_app.command("stats")
def catalog_stats(
    table: Annotated[str, typer.Argument(help="source.schema.table (or source.table)")],
    config: ConfigOption = None,
) -> None:
    """Print one table's statistics as JSON: rows, bytes, and per column distinct values, null fraction,
    min/max and most common values, with where each came from."""
    from catalog.statistics import statistics_as_dict

    try:
        with _gateway(config) as gateway:
            ref = gateway.catalog.resolve(table.split("."))
            stats = statistics_as_dict(gateway.catalog.statistics(ref))
    except GatewayError as exc:
        _fail(exc)
    print(json.dumps({"source": ref.source, "schema": ref.schema, "table": ref.table, **stats}, indent=2,
                     default=str))


cache_app = typer.Typer(no_args_is_help=True, help="The hot-partition cache of a running gateway (via its REST API).")
app.add_typer(cache_app, name="cache")
UrlOption = Annotated[str, typer.Option("--url", help="The gateway's REST address.")]
TokenOption = Annotated[str | None, typer.Option("--token", envvar="GATEWAY_TOKEN", help="A bearer token.")]


def _rest(method: str, url: str, path: str, token: str | None, **kwargs) -> dict:
    import httpx

    headers = {"authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.request(method, url.rstrip("/") + path, headers=headers, timeout=600, **kwargs)
    except httpx.HTTPError as exc:
        Console(stderr=True, soft_wrap=True).print(f"error: no gateway answers at {escape(url)}: {escape(str(exc))}")
        raise typer.Exit(2) from None
    body = response.json()
    if response.status_code >= 400:
        error = body.get("error", {})
        Console(stderr=True, soft_wrap=True).print(
            f"[bold red]error[/] ({escape(str(error.get('code')))}): {escape(str(error.get('message')))}"
        )
        raise typer.Exit(2)
    return body


@cache_app.command("status")
def cache_status(url: UrlOption = "http://127.0.0.1:8080", token: TokenOption = None,
                 json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List cached partitions with their tier, size and age, and the cache's budgets and counters."""
    status = _rest("GET", url, "/v1/cache", token)
    if json_output:
        print(json.dumps(status, default=str))
        return
    table = Table("source", "table", "partition", "columns", "tier", "bytes", "age (s)")
    for e in status["entries"]:
        table.add_row(e["source"], f"{e['schema']}.{e['table']}", e["partition"], str(len(e["columns"])), e["tier"],
                      str(e["bytes"]), f"{e['age_s']:.1f}")
    console = Console() if sys.stdout.isatty() else Console(width=100_000)
    console.print(table)
    memory, disk = status["memory"], status["disk"]
    console.print(f"memory {memory['used_bytes']}/{memory['budget_bytes']} bytes, "
                  f"disk {disk['used_bytes']}/{disk['budget_bytes']} bytes; {status['stats']}")


@cache_app.command("warm")
def cache_warm(table: Annotated[str, typer.Argument(help="source.schema.table")],
               where: Annotated[str | None, typer.Option(help="SQL condition: warm only these partitions.")] = None,
               url: UrlOption = "http://127.0.0.1:8080", token: TokenOption = None) -> None:
    """Fetch and cache every partition of TABLE (all columns), ahead of the queries that will need them."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), transient=True) as bar:
        bar.add_task(f"warming {table}", total=None)
        body = _rest("POST", url, "/v1/cache/warm", token, json={"table": table, "where": where})
    rows = sum(p["rows"] or 0 for p in body["partitions"])
    print(f"{table}: {len(body['partitions'])} partition(s), {rows} rows cached")


@cache_app.command("clear")
def cache_clear(source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
                table: Annotated[str | None, typer.Option(help="Only this table (with --source).")] = None,
                url: UrlOption = "http://127.0.0.1:8080", token: TokenOption = None) -> None:
    """Drop cached partitions (all, of one source, or of one table)."""
    params = {k: v for k, v in {"source": source, "table": table}.items() if v}
    body = _rest("DELETE", url, "/v1/cache", token, params=params)
    print(f"dropped {body['dropped']} cached partition(s)")


def main() -> None:
    """Run the command, then end the process with its exit code without finalizing the interpreter.

    The command's own threads are stopped and joined (``_gateway`` closes the engine), but DataFusion's tokio
    worker threads are not Python's to join: one still completing an awaited batch inside the Python C API
    while the interpreter finalizes aborts the process (exit 134) after a correct answer. Output and logs are
    flushed first; nothing else is left to clean up at that point.
    """
    try:
        app()
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc.code)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (``gateway query ... | head``)
            code = code or 1
    os._exit(code)


def _exit_code(code: object) -> int:
    """The process exit code ``sys.exit(code)`` would give (a message is printed to stderr, code 1)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


if __name__ == "__main__":
    main()
