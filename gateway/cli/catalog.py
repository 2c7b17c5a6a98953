"""``gateway catalog`` (``stats``, ``refresh``, ``history``, ``export``) and ``gateway mock``: the catalog of the
configured sources, its schema history, its export to metadata platforms, and mock data from its statistics."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from gateway.cli.app import (
    CleanCommand,
    CleanGroup,
    ConfigOption,
    app,
    command,
    open_backend,
    reported_errors,
    stdout_console,
)

catalog_app = typer.Typer(no_args_is_help=True, cls=CleanGroup, help="The catalog of the configured sources.")
app.add_typer(catalog_app, name="catalog")


@catalog_app.command("stats", cls=CleanCommand)
def catalog_stats(
    table: Annotated[str, typer.Argument(metavar="TABLE", help="source.schema.table (or source.table)")],
    config: ConfigOption = None,
    as_json: Annotated[bool | None, typer.Option(
        "--json/--table", help="JSON or a table (default: a table on a terminal, JSON when piped).")] = None,
) -> None:
    """One table's statistics: rows, bytes, and per column distinct values, null fraction, min/max and most
    common values, with where each came from."""
    from catalog.statistics import statistics_as_dict  # each command loads only what it runs

    with reported_errors(), open_backend(config, None) as backend:
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
    stdout_console().print(out)


def _blank(value: object) -> str:
    return "" if value is None else str(value)


@catalog_app.command("refresh", cls=CleanCommand)
def catalog_refresh(
    source: Annotated[str | None, typer.Argument(metavar="SOURCE", help="Only this source (default: all).")] = None,
    config: ConfigOption = None,
) -> None:
    """Introspect the sources now and print the schema changes since the last refresh (one JSON object per
    line: added, dropped, renamed and retyped columns, new and dropped tables), kept in catalog.state_path."""
    with reported_errors(), open_backend(config, None) as backend:
        for change in backend.engine.trust.refresh(source):
            print(json.dumps(change, default=str))


@catalog_app.command("history", cls=CleanCommand)
def catalog_history(
    table: Annotated[str, typer.Argument(metavar="TABLE", help="source.schema.table (or source.table)")],
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The recorded versions of one table's columns (catalog.state_path), after refreshing its source, each
    with the changes that made it (added, dropped, renamed, retyped columns)."""
    with reported_errors(), open_backend(config, None) as backend:
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
    stdout_console().print(out)


def _change_text(change: dict) -> str:
    """One schema change in a word or three: ``renamed a -> b``, ``added c``, ``retyped d int32 -> int64``."""
    kind = change["kind"].removeprefix("column_").removeprefix("table_")
    if change["kind"] == "column_renamed":
        return f"renamed {change['old_column']} -> {change['column']}"
    if change["kind"] == "column_retyped":
        return f"retyped {change['column']} {change['old_type']} -> {change['new_type']}"
    return f"{kind} {change['column']}" if change.get("column") else f"table {kind}"


@catalog_app.command("export", cls=CleanCommand)
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
    """Export the catalog (sources, schemas, tables, columns with types, keys, statistics; named views with
    their column lineage) in a metadata platform's ingestion format: datahub writes the JSON array DataHub's
    file source ingests; openmetadata writes OpenMetadata's create requests (services, databases, schemas,
    tables, profiles, lineage) or, with --url, PUTs them to an OpenMetadata server (gateway.trust.export)."""
    from gateway.trust.export import datahub_mcps, openmetadata_requests, post_openmetadata  # this command only

    if format not in ("datahub", "openmetadata"):
        raise typer.BadParameter(f"{format!r} is not a supported format (datahub, openmetadata)",
                                 param_hint="--format")
    if url is not None and (format != "openmetadata" or out is not None):
        raise typer.BadParameter("--url sends the openmetadata format, and not with --out", param_hint="--url")
    with reported_errors(), open_backend(config, None) as backend:
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
    from gateway.trust.mock import mock_tables  # each command loads only what it runs

    if register is not None and config is None:
        raise typer.BadParameter("--register adds a source to a config file: give it with --config",
                                 param_hint="--register")
    with reported_errors(), open_backend(config, None) as backend:
        catalog = backend.engine.catalog
        refs = [catalog.resolve(t.split(".")) for t in tables]
        files = mock_tables(catalog, refs, rows, out, seed, sensitive or [])
    for ref, path in files.items():
        print(f"{ref}: {rows} rows -> {path}")
    if register is not None:
        with open(config, "a", encoding="utf-8") as f:
            f.write(f'\n[[sources]]\nname = "{register}"\nkind = "parquet"\npath = "{out.resolve()}"\n')
        print(f"registered {out} as source '{register}' in {config}")

