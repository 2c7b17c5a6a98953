"""``gateway cache`` (``status``, ``warm``, ``clear``): the hot-partition cache of a running gateway, through its
REST API."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gateway import terminal
from gateway.cli.app import CleanCommand, CleanGroup, TokenOption, app, stdout_console

cache_app = typer.Typer(no_args_is_help=True, cls=CleanGroup,
                        help="The hot-partition cache of a running gateway (via its REST API).")
app.add_typer(cache_app, name="cache")
UrlOption = Annotated[str, typer.Option("--url", metavar="URL", envvar="GATEWAY_URL",
                                        help="The gateway's REST address.")]


def _rest(method: str, url: str, path: str, token: str | None, **kwargs) -> dict:
    import httpx  # each command loads only what it runs

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


@cache_app.command("status", cls=CleanCommand)
def cache_status(url: UrlOption = "http://127.0.0.1:8080", token: TokenOption = None,
                 json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List cached partitions with their tier, size and age, and the cache's budgets and counters."""
    status = _rest("GET", url, "/v1/cache", token)
    if json_output:
        print(json.dumps(status, default=str))
        return
    console = stdout_console()
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


@cache_app.command("warm", cls=CleanCommand)
def cache_warm(table: Annotated[str, typer.Argument(metavar="TABLE", help="source.schema.table")],
               where: Annotated[str | None, typer.Option(
                   metavar="CONDITION", help="SQL condition: warm only these partitions.")] = None,
               url: UrlOption = "http://127.0.0.1:8080", token: TokenOption = None) -> None:
    """Fetch and cache every partition of TABLE (all columns), ahead of the queries that will need them."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn  # this command only

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), transient=True,
                  console=Console(stderr=True)) as bar:
        bar.add_task(f"warming {table}", total=None)
        body = _rest("POST", url, "/v1/cache/warm", token, json={"table": table, "where": where})
    rows = sum(p["rows"] or 0 for p in body["partitions"])
    print(f"{table}: {len(body['partitions'])} partition(s), {rows} rows cached")


@cache_app.command("clear", cls=CleanCommand)
def cache_clear(source: Annotated[str | None, typer.Option(metavar="SOURCE", help="Only this source.")] = None,
                table: Annotated[str | None, typer.Option(metavar="TABLE", help="Only this table (with --source).")
                                 ] = None,
                url: UrlOption = "http://127.0.0.1:8080", token: TokenOption = None) -> None:
    """Drop cached partitions (all, of one source, or of one table)."""
    params = {k: v for k, v in {"source": source, "table": table}.items() if v}
    body = _rest("DELETE", url, "/v1/cache", token, params=params)
    print(f"dropped {body['dropped']} cached partition(s)")

