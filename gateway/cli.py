"""The ``gateway`` command line: serve, query, explain, shell, catalog and cache commands.

``query``/``explain``/``shell`` run in-process on the config's sources, or with ``--server grpc://host:port`` on a
running gateway through ``gateway.client`` (Flight SQL over ADBC). Exit codes: 0 after a correct answer, 2 for an
error (``error (code): message`` on stderr), 130 after Ctrl-C (the query is cancelled first).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from gateway import terminal
from gateway.client import connect
from gateway.errors import GatewayError
from gateway.settings import load_settings, prepare

log = logging.getLogger("gateway")


def _clean_help(params: list) -> None:
    """Help texts without typer's type labels (``<str>``, ``<bool>``) or braces around required arguments:
    options show their metavar (``--format FORMAT``), flags nothing, arguments their upper-case name."""
    for p in params:
        if isinstance(p, TyperArgument):
            name = p.metavar or (p.name or "").upper()
            p.display_type_rich = lambda ctx: None
            p._usage_display_name = lambda n=name, r=p.required: n if r else f"[{n}]"
        elif isinstance(p, TyperOption):
            label = None if p.is_flag or p.count else (p.metavar or (p.name or "").upper())
            p.display_type_rich = lambda ctx, label=label: label


class _Command(TyperCommand):
    def format_help(self, ctx, formatter) -> None:
        _clean_help(self.get_params(ctx))
        super().format_help(ctx, formatter)


class _Group(TyperGroup):
    def format_help(self, ctx, formatter) -> None:
        _clean_help(self.get_params(ctx))
        super().format_help(ctx, formatter)


app = typer.Typer(add_completion=False, no_args_is_help=True, cls=_Group, help="Federated SQL gateway.")


def command(*args, **kwargs):
    """``app.command`` with the clean help texts."""
    return app.command(*args, cls=_Command, **kwargs)


ConfigOption = Annotated[Path | None, typer.Option(
    "--config", "-c", metavar="FILE", envvar="GATEWAY_CONFIG", help="Config file (default config/gateway.toml).")]
SqlArgument = Annotated[str | None, typer.Argument(
    metavar="SQL", show_default=False,
    help="The SQL; '-' reads it from stdin, '@FILE' from a file. A leading '-- comment' is fine.")]
FileOption = Annotated[Path | None, typer.Option(
    "--file", "-f", metavar="FILE", help="Read the SQL from FILE ('-': stdin); its statements run in order.")]
ServerOption = Annotated[str | None, typer.Option(
    "--server", "-s", metavar="URI", envvar="GATEWAY_SERVER",
    help="Run on a gateway server (grpc://host:port, grpc+tls://host:port) instead of in-process.")]
UserOption = Annotated[str | None, typer.Option("--user", "-u", metavar="NAME", envvar="GATEWAY_USER",
                                                help="User name for --server (Basic handshake).")]
PasswordOption = Annotated[str | None, typer.Option(
    "--password", metavar="TEXT", envvar="GATEWAY_PASSWORD",
    help="Password for --user (asked for on a terminal when not given).")]
TokenOption = Annotated[str | None, typer.Option("--token", metavar="TOKEN", envvar="GATEWAY_TOKEN",
                                                 help="A bearer or API token.")]
TlsCaOption = Annotated[Path | None, typer.Option(
    "--tls-ca", metavar="PEM", envvar="GATEWAY_TLS_CA",
    help="Certificate(s) to trust for grpc+tls:// (a private CA, a self-signed server).")]
TlsSkipOption = Annotated[bool, typer.Option("--tls-skip-verify", help="Do not check the server's certificate.")]
TimeoutOption = Annotated[float | None, typer.Option(
    "--timeout", metavar="SECONDS", help="Cancel the query after SECONDS (default: limits.query_timeout_s).")]


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """GatewayError -> ``error (code): message`` and exit 2; Ctrl-C -> ``cancelled`` and exit 130."""
    try:
        yield
    except GatewayError as exc:
        Console(stderr=True, soft_wrap=True).print(f"[bold red]error[/] ({exc.code}): {escape(exc.message)}",
                                                   highlight=False)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        Console(stderr=True).print("cancelled", highlight=False)
        raise typer.Exit(130) from None


@contextlib.contextmanager
def _backend(config: Path | None, server: str | None, user: str | None = None, password: str | None = None,
             token: str | None = None, tls_ca: Path | None = None, tls_skip_verify: bool = False,
             timeout: float | None = None) -> Iterator:
    """Where queries run: a gateway server (``--server``) through the client, else an in-process engine on
    ``config``, closed on the way out (its fragment reader threads are stopped and joined before exit)."""
    if server is None:
        from gateway.execution.engine import QueryEngine

        backend = terminal.LocalBackend(QueryEngine(prepare(load_settings(config))), timeout)
    else:
        if user is not None and password is None and sys.stdin.isatty():
            password = typer.prompt(f"password for {user}", hide_input=True)
        try:
            connection = connect(server, user=user, password=password, token=token, tls=tls_ca,
                                 tls_skip_verify=tls_skip_verify, timeout_s=timeout)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--server") from None
        backend = terminal.RemoteBackend(connection, server)
    try:
        yield backend
    finally:
        backend.close()


def read_sql(sql: str | None, file: Path | None, stdin: IO[str] | None = None) -> str:
    """The SQL text from the argument, ``-`` (stdin), ``@FILE``, ``--file FILE`` or a piped stdin.
    Raises typer.BadParameter naming what is missing or unreadable."""
    stdin = stdin or sys.stdin
    if sql is not None and file is not None:
        raise typer.BadParameter("give the SQL either as an argument or with --file, not both", param_hint="SQL")
    if sql is not None and sql.startswith("@"):
        file = Path(sql[1:])
    elif sql == "-" or str(file) == "-":
        return stdin.read()
    elif sql is None and file is None:
        if stdin.isatty():
            raise typer.BadParameter("no SQL: give it as an argument, with --file FILE, or on stdin ('-')",
                                     param_hint="SQL")
        return stdin.read()
    if file is not None:
        try:
            return file.read_text()
        except OSError as exc:
            raise typer.BadParameter(f"cannot read the SQL file {str(file)!r}: {exc.strerror or exc}",
                                     param_hint="SQL") from None
    return sql or ""


def _statements(text: str) -> list[str]:
    statements = terminal.split_statements(text)
    if not statements:
        raise typer.BadParameter("no SQL statement given (only blanks or comments)", param_hint="SQL")
    return statements


def _output(format: str, output: Path | None) -> contextlib.AbstractContextManager[IO]:
    """Where results go: ``output`` (opened for text or bytes as the format needs) or stdout. Binary formats
    are refused on a terminal."""
    binary = format in terminal.BINARY_FORMATS
    if output is not None:
        return output.open("wb" if binary else "w", newline="" if format == "csv" else None)
    if binary and sys.stdout.isatty():
        raise typer.BadParameter(f"{format} output is binary: write it with --output FILE or redirect stdout",
                                 param_hint="--format")
    return contextlib.nullcontext(sys.stdout.buffer if binary else sys.stdout)


def _stdout_console(file: IO | None = None) -> Console:
    # piped output is not cut to 80 columns: every value is printed whole
    if file is None or file is sys.stdout:
        return Console() if sys.stdout.isatty() else Console(width=100_000)
    return Console(file=file, width=100_000)


@command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(metavar="HOST", help="Address to bind (default from config).")] = None,
    flight_port: Annotated[int | None, typer.Option(metavar="PORT", help="Flight SQL port (default 8815).")] = None,
    http_port: Annotated[int | None, typer.Option(metavar="PORT", help="REST port (default 8080).")] = None,
) -> None:
    """Start the Flight SQL server and the REST API on the configured sources."""
    from gateway.logs import setup_logging
    from gateway.server import run

    setup_logging()
    with _errors():
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
    statements = _statements(read_sql(sql, file))
    stderr = Console(stderr=True)
    with _errors(), _output(format, output) as out, \
            _backend(config, server, user, password, token, tls_ca, tls_skip_verify, timeout) as backend:
        # a spinner only where it cannot mix with rows streaming to the same terminal
        spinner = format == "table" or out is not sys.stdout or not sys.stdout.isatty()
        for statement in statements:
            result = terminal.sink(format, out, _stdout_console(out) if format == "table" else None, max_rows)
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
    statements = _statements(read_sql(sql, file))
    with _errors(), _backend(config, server, user, password, token, tls_ca, tls_skip_verify) as backend:
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
    from gateway.shell import Shell

    with _errors(), _backend(config, server, user, password, token, tls_ca, tls_skip_verify) as backend:
        session = Shell(backend, history_path=history)
        failed = session.run()
    if failed and not session.interactive:  # a script (stdin not a terminal) with a failed statement
        raise typer.Exit(2)


catalog_app = typer.Typer(no_args_is_help=True, cls=_Group, help="The catalog of the configured sources.")
app.add_typer(catalog_app, name="catalog")


@catalog_app.command("stats", cls=_Command)
def catalog_stats(
    table: Annotated[str, typer.Argument(metavar="TABLE", help="source.schema.table (or source.table)")],
    config: ConfigOption = None,
    as_json: Annotated[bool | None, typer.Option(
        "--json/--table", help="JSON or a table (default: a table on a terminal, JSON when piped).")] = None,
) -> None:
    """One table's statistics: rows, bytes, and per column distinct values, null fraction, min/max and most
    common values, with where each came from."""
    from catalog.statistics import statistics_as_dict

    with _errors(), _backend(config, None) as backend:
        catalog = backend.engine.catalog
        ref = catalog.resolve(table.split("."))
        stats = statistics_as_dict(catalog.statistics(ref))
    if as_json or (as_json is None and not sys.stdout.isatty()):
        print(json.dumps({"source": ref.source, "schema": ref.schema, "table": ref.table, **stats}, indent=2,
                         default=str))
        return
    out = Table("column", "distinct", "nulls", "min", "max", "most common", "origin",
                title=f"{ref}: {stats['rows']} rows, {stats['bytes']} bytes")
    for name, c in stats["columns"].items():
        common = ", ".join(f"{v} ({f:.0%})" if isinstance(f, float) else str(v) for v, f in c["most_common"][:3])
        nulls = "" if c["null_fraction"] is None else f"{c['null_fraction']:.1%}"
        out.add_row(*(escape(str(x)) for x in (name, _blank(c["distinct"]), nulls, _blank(c["min"]),
                                                _blank(c["max"]), common, c["origin"])))
    _stdout_console().print(out)


def _blank(value: object) -> str:
    return "" if value is None else str(value)


@catalog_app.command("refresh", cls=_Command)
def catalog_refresh(
    source: Annotated[str | None, typer.Argument(metavar="SOURCE", help="Only this source (default: all).")] = None,
    config: ConfigOption = None,
) -> None:
    """Introspect the sources now and print the schema changes since the last refresh (one JSON object per
    line: added, dropped, renamed and retyped columns, new and dropped tables), kept in catalog.state_path."""
    with _errors(), _backend(config, None) as backend:
        for change in backend.engine.trust.refresh(source):
            print(json.dumps(change, default=str))


@catalog_app.command("history", cls=_Command)
def catalog_history(
    table: Annotated[str, typer.Argument(metavar="TABLE", help="source.schema.table (or source.table)")],
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The recorded versions of one table's columns (catalog.state_path), after refreshing its source, each
    with the changes that made it (added, dropped, renamed, retyped columns)."""
    with _errors(), _backend(config, None) as backend:
        engine = backend.engine
        ref = engine.catalog.resolve(table.split("."))
        engine.trust.refresh(ref.source)
        versions = engine.catalog.drift.history(ref.source, ref.schema, ref.table)
    if as_json:
        print(json.dumps({"table": str(ref), "versions": versions}, indent=2))
        return
    out = Table("version", "seen at", "columns", "changes", "hash", title=f"{ref}: {len(versions)} version(s)")
    for v in versions:
        columns = "dropped" if v["dropped"] else ", ".join(f"{c['name']} {c['type']}" for c in v["columns"])
        changes = ", ".join(_change_text(c) for c in v.get("changes", []))
        out.add_row(str(v["version"]), v["seen_at"], escape(columns), escape(changes), v["hash"][:12])
    _stdout_console().print(out)


def _change_text(change: dict) -> str:
    """One schema change in a word or three: ``renamed a -> b``, ``added c``, ``retyped d int32 -> int64``."""
    kind = change["kind"].removeprefix("column_").removeprefix("table_")
    if change["kind"] == "column_renamed":
        return f"renamed {change['old_column']} -> {change['column']}"
    if change["kind"] == "column_retyped":
        return f"retyped {change['column']} {change['old_type']} -> {change['new_type']}"
    return f"{kind} {change['column']}" if change.get("column") else f"table {kind}"


@catalog_app.command("export", cls=_Command)
def catalog_export(
    format: Annotated[str, typer.Option("--format", metavar="FORMAT",
                                        help="datahub (metadata change proposals) or openmetadata (create requests)")],
    out: Annotated[Path | None, typer.Option("--out", metavar="FILE", help="Write here (default: stdout).")] = None,
    url: Annotated[str | None, typer.Option(
        "--url", metavar="URL", help="openmetadata: send to this server's REST API (e.g. http://host:8585/api); "
                                     "token from $OPENMETADATA_JWT_TOKEN.")] = None,
    source: Annotated[list[str] | None, typer.Option("--source", metavar="SOURCE", help="Only these sources.")
                      ] = None,
    env: Annotated[str, typer.Option("--env", metavar="ENV", help="DataHub environment of the URNs.")] = "PROD",
    config: ConfigOption = None,
) -> None:
    """Export the catalog (sources, schemas, tables, columns with types, keys, statistics) in a metadata
    platform's ingestion format: datahub writes the JSON array DataHub's file source ingests; openmetadata
    writes OpenMetadata's create requests (services, databases, schemas, tables, profiles) or, with --url,
    PUTs them to an OpenMetadata server (gateway.trust.export)."""
    from gateway.trust.export import datahub_mcps, openmetadata_requests, post_openmetadata

    if format not in ("datahub", "openmetadata"):
        raise typer.BadParameter(f"{format!r} is not a supported format (datahub, openmetadata)",
                                 param_hint="--format")
    if url is not None and (format != "openmetadata" or out is not None):
        raise typer.BadParameter("--url sends the openmetadata format, and not with --out", param_hint="--url")
    with _errors(), _backend(config, None) as backend:
        catalog = backend.engine.catalog
        items = datahub_mcps(catalog, source or None, env) if format == "datahub" else openmetadata_requests(
            catalog, source or None)
        if url is not None:
            sent = post_openmetadata(items, url, os.environ.get("OPENMETADATA_JWT_TOKEN"))
            print(f"{sent['sent']} OpenMetadata requests -> {url} ({json.dumps(sent['by_type'])})")
            return
    text = json.dumps(items, indent=1, default=str)
    what = "metadata change proposals" if format == "datahub" else "OpenMetadata create requests"
    if out is None:
        print(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
        print(f"{len(items)} {what} -> {out}")


@command()
def mock(
    tables: Annotated[list[str], typer.Argument(metavar="TABLE...", help="source.schema.table (or source.table)")],
    out: Annotated[Path, typer.Option("--out", metavar="DIR", help="Folder for <table>.parquet files.")],
    rows: Annotated[int, typer.Option("--rows", metavar="N", help="Rows per table.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", metavar="S", help="Same seed, same files.")] = 0,
    sensitive: Annotated[list[str] | None, typer.Option(
        "--sensitive", metavar="COLUMN", help="Never copy this column's values (column or table.column).")] = None,
    register: Annotated[str | None, typer.Option(
        "--register", metavar="NAME", help="Add the folder to --config as a Parquet source NAME.")] = None,
    config: ConfigOption = None,
) -> None:
    """Write Parquet mocks of TABLEs that follow their statistics (nulls, common values, ranges, distinct
    counts), with unique primary keys and foreign keys resolvable among the tables mocked together; columns
    that look personal or are marked sensitive get synthetic values only (gateway.trust.mock)."""
    from gateway.trust.mock import mock_tables

    if register is not None and config is None:
        raise typer.BadParameter("--register adds a source to a config file: give it with --config",
                                 param_hint="--register")
    with _errors(), _backend(config, None) as backend:
        catalog = backend.engine.catalog
        refs = [catalog.resolve(t.split(".")) for t in tables]
        files = mock_tables(catalog, refs, rows, out, seed, sensitive or [])
    for ref, path in files.items():
        print(f"{ref}: {rows} rows -> {path}")
    if register is not None:
        with open(config, "a", encoding="utf-8") as f:
            f.write(f'\n[[sources]]\nname = "{register}"\nkind = "parquet"\npath = "{out.resolve()}"\n')
        print(f"registered {out} as source '{register}' in {config}")


cache_app = typer.Typer(no_args_is_help=True, cls=_Group,
                        help="The hot-partition cache of a running gateway (via its REST API).")
app.add_typer(cache_app, name="cache")
UrlOption = Annotated[str, typer.Option("--url", metavar="URL", envvar="GATEWAY_URL",
                                        help="The gateway's REST address.")]


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


@cache_app.command("status", cls=_Command)
def cache_status(url: UrlOption = "http://127.0.0.1:8080", token: TokenOption = None,
                 json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List cached partitions with their tier, size and age, and the cache's budgets and counters."""
    status = _rest("GET", url, "/v1/cache", token)
    if json_output:
        print(json.dumps(status, default=str))
        return
    console = _stdout_console()
    table = Table("source", "table", "partition", "columns", "tier", "size", "age (s)", "hits",
                  title=f"{len(status['entries'])} cached partition(s)")
    for e in status["entries"]:
        table.add_row(escape(e["source"]), escape(f"{e['schema']}.{e['table']}"), escape(str(e["partition"])),
                      str(len(e["columns"])), e["tier"], terminal.human_bytes(e["bytes"] or 0), f"{e['age_s']:.1f}",
                      str(e.get("hits", "")))
    console.print(table)
    memory, disk = status["memory"], status["disk"]
    console.print(f"memory {terminal.human_bytes(memory['used_bytes'])} of "
                  f"{terminal.human_bytes(memory['budget_bytes'])}, disk {terminal.human_bytes(disk['used_bytes'])} "
                  f"of {terminal.human_bytes(disk['budget_bytes'] or 0)}", highlight=False)
    counters = Table("counter", "value", title="counters")
    for name, value in status.get("stats", {}).items():
        counters.add_row(escape(name.replace("_", " ")), escape(str(value)))
    console.print(counters)


@cache_app.command("warm", cls=_Command)
def cache_warm(table: Annotated[str, typer.Argument(metavar="TABLE", help="source.schema.table")],
               where: Annotated[str | None, typer.Option(
                   metavar="CONDITION", help="SQL condition: warm only these partitions.")] = None,
               url: UrlOption = "http://127.0.0.1:8080", token: TokenOption = None) -> None:
    """Fetch and cache every partition of TABLE (all columns), ahead of the queries that will need them."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), transient=True,
                  console=Console(stderr=True)) as bar:
        bar.add_task(f"warming {table}", total=None)
        body = _rest("POST", url, "/v1/cache/warm", token, json={"table": table, "where": where})
    rows = sum(p["rows"] or 0 for p in body["partitions"])
    print(f"{table}: {len(body['partitions'])} partition(s), {rows} rows cached")


@cache_app.command("clear", cls=_Command)
def cache_clear(source: Annotated[str | None, typer.Option(metavar="SOURCE", help="Only this source.")] = None,
                table: Annotated[str | None, typer.Option(metavar="TABLE", help="Only this table (with --source).")
                                 ] = None,
                url: UrlOption = "http://127.0.0.1:8080", token: TokenOption = None) -> None:
    """Drop cached partitions (all, of one source, or of one table)."""
    params = {k: v for k, v in {"source": source, "table": table}.items() if v}
    body = _rest("DELETE", url, "/v1/cache", token, params=params)
    print(f"dropped {body['dropped']} cached partition(s)")


def sql_first(argv: list[str]) -> list[str]:
    """``argv`` with SQL that starts like an option (``-- a comment\\nSELECT ...``) moved behind ``--``, where
    click reads it as the SQL argument instead of an unknown option. An option name never holds whitespace."""
    sql = [a for a in argv if a.startswith("-") and any(c.isspace() for c in a)]
    if not sql or "--" in argv:
        return argv
    return [a for a in argv if a not in sql] + ["--", *sql]


def main() -> None:
    """Run the command, then end the process with its exit code without finalizing the interpreter.

    The command's own threads are stopped and joined (the backend closes the engine), but DataFusion's tokio
    worker threads are not Python's to join: one still completing an awaited batch inside the Python C API
    while the interpreter finalizes aborts the process (exit 134) after a correct answer. Output and logs are
    flushed first; nothing else is left to clean up at that point.
    """
    try:
        app(args=sql_first(sys.argv[1:]), prog_name="gateway")
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except KeyboardInterrupt:
        code = 130
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
