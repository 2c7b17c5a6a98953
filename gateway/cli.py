"""The ``gateway`` command line: serve, query, explain."""

from __future__ import annotations

import csv
import json
import logging
import sys
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


def _gateway(config: Path | None):
    from gateway.engine import Gateway

    return Gateway(prepare(load_settings(config)))


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
) -> None:
    """Run one query in-process and print the result."""
    if format not in ("table", "csv", "json"):
        raise typer.BadParameter("format must be table, csv or json", param_hint="--format")
    try:
        result = _gateway(config).execute(sql)
        table = result.reader.read_all()
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
        print(_gateway(config).explain(sql, analyze=analyze))
    except GatewayError as exc:
        _fail(exc)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
