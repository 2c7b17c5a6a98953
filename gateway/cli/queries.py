"""The commands that serve and run SQL: ``serve``, ``query``, ``explain``, ``shell``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from gateway import terminal
from gateway.cli.app import (
    ConfigOption,
    FileOption,
    PasswordOption,
    ServerOption,
    SqlArgument,
    TimeoutOption,
    TlsCaOption,
    TlsSkipOption,
    TokenOption,
    UserOption,
    command,
    open_backend,
    output_to,
    read_sql,
    reported_errors,
    split_sql,
    stdout_console,
)
from gateway.settings import load_settings, prepare


@command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(metavar="HOST", help="Address to bind (default from config).")] = None,
    flight_port: Annotated[int | None, typer.Option(metavar="PORT", help="Flight SQL port (default 8815).")] = None,
    http_port: Annotated[int | None, typer.Option(metavar="PORT", help="REST port (default 8080).")] = None,
) -> None:
    """Start the Flight SQL server and the REST API on the configured sources."""
    from gateway.logs import setup_logging  # each command loads only what it runs: `--help` stays fast
    from gateway.server import run

    setup_logging()
    with reported_errors():
        settings = prepare(load_settings(config))
    server = settings.server
    server.host = host or server.host
    server.flight_port = server.flight_port if flight_port is None else flight_port
    server.http_port = server.http_port if http_port is None else http_port
    run(settings)


@command()
def query(
    sql: SqlArgument = None,
    file: FileOption = None,
    config: ConfigOption = None,
    format: Annotated[str, typer.Option(
        "--format", metavar="FORMAT", help="table, csv, json, ndjson, markdown, parquet or arrow.")] = "table",
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", metavar="FILE", help="Write the result to FILE (needed for parquet/arrow on a terminal).")
    ] = None,
    max_rows: Annotated[int, typer.Option(
        "--max-rows", metavar="N",
        help="Table format: show the first and last rows of a longer result; 0 shows every row.")
    ] = terminal.DEFAULT_MAX_ROWS,
    timeout: TimeoutOption = None,
    server: ServerOption = None, user: UserOption = None, password: PasswordOption = None,
    token: TokenOption = None, tls_ca: TlsCaOption = None, tls_skip_verify: TlsSkipOption = False,
) -> None:
    """Run SQL and print the result (in-process, or on --server)."""
    if format not in terminal.FORMATS:
        raise typer.BadParameter(f"{format!r} is not one of {', '.join(terminal.FORMATS)}", param_hint="--format")
    if max_rows < 0:
        raise typer.BadParameter("must be 0 (no cap) or more", param_hint="--max-rows")
    statements = split_sql(read_sql(sql, file))
    stderr = Console(stderr=True)
    with reported_errors(), output_to(format, output) as out, \
            open_backend(config, server, user, password, token, tls_ca, tls_skip_verify, timeout) as backend:
        # a spinner only where it cannot mix with rows streaming to the same terminal
        spinner = format == "table" or out is not sys.stdout or not sys.stdout.isatty()
        for statement in statements:
            result = terminal.sink(format, out, stdout_console(out) if format == "table" else None, max_rows)
            terminal.run_query(backend, statement, result, stderr, spinner=spinner)


@command()
def explain(
    sql: SqlArgument = None,
    file: FileOption = None,
    config: ConfigOption = None,
    analyze: Annotated[bool, typer.Option("--analyze", help="Run it and show rows/bytes per fragment.")] = False,
    server: ServerOption = None, user: UserOption = None, password: PasswordOption = None,
    token: TokenOption = None, tls_ca: TlsCaOption = None, tls_skip_verify: TlsSkipOption = False,
) -> None:
    """Print the federated plan: each fragment's pushed SQL and the residual DataFusion plan."""
    statements = split_sql(read_sql(sql, file))
    with reported_errors(), open_backend(config, server, user, password, token, tls_ca, tls_skip_verify) as backend:
        for statement in statements:
            print(backend.explain(statement, analyze=analyze))


@command()
def shell(
    config: ConfigOption = None,
    history: Annotated[Path | None, typer.Option(
        "--history", metavar="FILE", envvar="GATEWAY_HISTORY",
        help="History file (default ~/.gateway_history, or $XDG_STATE_HOME/gateway/history).")] = None,
    server: ServerOption = None, user: UserOption = None, password: PasswordOption = None,
    token: TokenOption = None, tls_ca: TlsCaOption = None, tls_skip_verify: TlsSkipOption = False,
) -> None:
    """An interactive SQL shell: statements end with ';', history, completion of names; .help lists commands."""
    from gateway.shell import Shell  # prompt_toolkit loads for the shell only

    with reported_errors(), open_backend(config, server, user, password, token, tls_ca, tls_skip_verify) as backend:
        session = Shell(backend, history_path=history)
        failed = session.run()
    if failed and not session.interactive:  # a script (stdin not a terminal) with a failed statement
        raise typer.Exit(2)

