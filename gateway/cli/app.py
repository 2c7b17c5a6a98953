"""What every ``gateway`` command shares: the typer ``app``, help texts without type labels, the common options,
errors reported as ``error (code): message`` with exit code 2, where queries run (``open_backend``: in-process or
``--server``) and where SQL comes from (``read_sql``)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from gateway import terminal
from gateway.client import connect
from gateway.errors import GatewayError
from gateway.settings import load_settings, prepare


def clean_help(params: list) -> None:
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


class CleanCommand(TyperCommand):
    def format_help(self, ctx, formatter) -> None:
        clean_help(self.get_params(ctx))
        super().format_help(ctx, formatter)


class CleanGroup(TyperGroup):
    def format_help(self, ctx, formatter) -> None:
        clean_help(self.get_params(ctx))
        super().format_help(ctx, formatter)


app = typer.Typer(add_completion=False, no_args_is_help=True, cls=CleanGroup, help="Federated SQL gateway.")


def command(*args, **kwargs):
    """``app.command`` with the clean help texts."""
    return app.command(*args, cls=CleanCommand, **kwargs)


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
def reported_errors() -> Iterator[None]:
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
def open_backend(config: Path | None, server: str | None, user: str | None = None, password: str | None = None,
             token: str | None = None, tls_ca: Path | None = None, tls_skip_verify: bool = False,
             timeout: float | None = None) -> Iterator:
    """Where queries run: a gateway server (``--server``) through the client, else an in-process engine on
    ``config``, closed on the way out (its fragment reader threads are stopped and joined before exit)."""
    if server is None:
        from gateway.execution.engine import QueryEngine  # in-process back end only (not with --server)

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


def split_sql(text: str) -> list[str]:
    statements = terminal.split_statements(text)
    if not statements:
        raise typer.BadParameter("no SQL statement given (only blanks or comments)", param_hint="SQL")
    return statements


def output_to(format: str, output: Path | None) -> contextlib.AbstractContextManager[IO]:
    """Where results go: ``output`` (opened for text or bytes as the format needs) or stdout. Binary formats
    are refused on a terminal."""
    binary = format in terminal.BINARY_FORMATS
    if output is not None:
        return output.open("wb" if binary else "w", newline="" if format == "csv" else None)
    if binary and sys.stdout.isatty():
        raise typer.BadParameter(f"{format} output is binary: write it with --output FILE or redirect stdout",
                                 param_hint="--format")
    return contextlib.nullcontext(sys.stdout.buffer if binary else sys.stdout)


def stdout_console(file: IO | None = None) -> Console:
    # piped output is not cut to 80 columns: every value is printed whole
    if file is None or file is sys.stdout:
        return Console() if sys.stdout.isatty() else Console(width=100_000)
    return Console(file=file, width=100_000)

