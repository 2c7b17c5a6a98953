"""The ``gateway`` command line: serve, query, explain, shell, catalog and cache commands.

``query``/``explain``/``shell`` run in-process on the config's sources, or with ``--server grpc://host:port`` on a
running gateway through ``gateway.client`` (Flight SQL over ADBC). Exit codes: 0 after a correct answer, 2 for an
error (``error (code): message`` on stderr), 130 after Ctrl-C (the query is cancelled first).

The commands live in ``gateway.cli.queries`` (serve, query, explain, shell), ``gateway.cli.catalog`` (the
catalog group and mock) and ``gateway.cli.cache`` (the cache group), over what ``gateway.cli.app`` shares.
"""

from __future__ import annotations

import logging
import os
import sys

from gateway.cli.app import app, read_sql

# isort: split
# the commands register themselves on ``app`` as these modules load, in the order --help lists them
from gateway.cli import queries  # noqa: F401  (serve, query, explain, shell)

# isort: split
from gateway.cli import catalog  # noqa: F401  (the catalog group, mock)

# isort: split
from gateway.cli import cache  # noqa: F401  (the cache group)

__all__ = ["app", "main", "read_sql", "sql_first"]

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

