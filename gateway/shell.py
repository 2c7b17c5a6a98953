"""``gateway shell``: an interactive SQL shell over an in-process engine or a gateway server (prompt_toolkit).

Statements may span lines and end with ``;``. History is kept in ``~/.gateway_history`` (or
``$XDG_STATE_HOME/gateway/history`` when that variable is set). Tab completes SQL keywords and catalog names:
sources, ``source.schema``, tables (``source.schema.table``, ``source.table``, bare) and columns, read from the
catalog in-process or from the server's metadata calls. Ctrl-C cancels a running query (or clears the input);
Ctrl-D or ``.quit`` leaves. When stdin is not a terminal the same commands are read from it as a script.

Commands: ``.help``, ``.quit`` / ``.exit`` / ``\\q``, ``.timer on|off`` (``\\timing`` toggles), ``.explain [analyze]
<sql>``, ``.format table|csv|json|ndjson|markdown``, ``.maxrows N``, ``.sources``, ``.tables [source]``,
``.refresh`` (reload the names for completion).
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import Completer, Completion
from prompt_toolkit.history import FileHistory, InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings
from prompt_toolkit.lexers import PygmentsLexer
from pygments.lexers.sql import SqlLexer
from rich.console import Console
from rich.markup import escape

from gateway import terminal
from gateway.errors import GatewayError

KEYWORDS = (
    "SELECT", "FROM", "WHERE", "GROUP BY", "ORDER BY", "HAVING", "LIMIT", "OFFSET", "JOIN", "LEFT JOIN",
    "RIGHT JOIN", "FULL JOIN", "INNER JOIN", "CROSS JOIN", "ON", "USING", "AS", "AND", "OR", "NOT", "IN", "IS",
    "NULL", "LIKE", "ILIKE", "BETWEEN", "CASE", "WHEN", "THEN", "ELSE", "END", "DISTINCT", "UNION", "UNION ALL",
    "INTERSECT", "EXCEPT", "WITH", "EXPLAIN", "EXPLAIN ANALYZE", "COUNT", "SUM", "AVG", "MIN", "MAX", "CAST",
    "COALESCE", "DATE", "TIMESTAMP", "INTERVAL", "EXTRACT", "ASC", "DESC", "NULLS FIRST", "NULLS LAST", "TRUE",
    "FALSE", "SHOW", "DESCRIBE", "OVER", "PARTITION BY",
)
DOT_COMMANDS = (".help", ".quit", ".exit", ".timer", ".explain", ".format", ".maxrows", ".sources", ".tables",
                ".refresh", "\\timing", "\\q")
HELP = """\
Statements end with ';' and may span lines. Tab completes keywords and names; Ctrl-C cancels a running query.
  .timer on|off      print each statement's time (\\timing toggles)
  .explain [analyze] SQL   the federated plan (analyze: run it, rows and bytes per fragment)
  .format FORMAT     table, csv, json, ndjson or markdown
  .maxrows N         table format: first and last rows of longer results (0: all)
  .sources           the sources        .tables [SOURCE]   their tables
  .refresh           reload the names used for completion
  .help              this text          .quit              leave (also Ctrl-D, \\q)"""


def history_path() -> Path:
    """``$XDG_STATE_HOME/gateway/history`` when XDG_STATE_HOME is set, else ``~/.gateway_history``."""
    state = os.environ.get("XDG_STATE_HOME")
    return Path(state) / "gateway" / "history" if state else Path.home() / ".gateway_history"


class NameCompleter(Completer):
    """Completes the dotted word before the cursor with SQL keywords, dot commands and the catalog's names
    (``names()`` is called once, at the first completion, and again after ``refresh()``)."""

    def __init__(self, names) -> None:
        self._load = names
        self._words: list[str] | None = None

    def refresh(self) -> None:
        self._words = None

    def words(self) -> list[str]:
        if self._words is None:
            try:
                catalog = self._load().words()
            except GatewayError:
                catalog = []  # completion must never break the prompt
            self._words = [*catalog, *KEYWORDS]
        return self._words

    def get_completions(self, document, complete_event) -> Iterable[Completion]:
        word = re.search(r"[\w.\\]*$", document.text_before_cursor).group(0)
        if not word:
            return
        if document.text_before_cursor.lstrip() == word and word[0] in ".\\":
            candidates: Iterable[str] = DOT_COMMANDS
        else:
            candidates = self.words()
        # one level at a time: "demo_l" -> "demo_lake", "demo_lake.m" -> "demo_lake.main", ...
        lowered, depth = word.lower(), word.count(".")
        for candidate in candidates:
            if candidate.lower().startswith(lowered) and candidate != word and candidate.count(".") == depth:
                yield Completion(candidate, start_position=-len(word))


class Shell:
    """The shell over ``backend`` (``terminal.LocalBackend`` or ``RemoteBackend``).

    ``run()`` reads from a terminal with prompt_toolkit, or (stdin not a terminal, or ``interactive=False``)
    reads the whole of ``stdin`` as a script. ``input``/``output`` are prompt_toolkit's (tests pass a pipe input
    and a DummyOutput); results and messages go to ``out`` (default stdout) and ``err`` (default stderr).
    """

    def __init__(self, backend, history_path: Path | None = None, *, input=None, output=None,
                 out: IO[str] | None = None, err: IO[str] | None = None, stdin: IO[str] | None = None,
                 interactive: bool | None = None) -> None:
        self.backend = backend
        self.stdin = stdin or sys.stdin
        self.interactive = self.stdin.isatty() if interactive is None and input is None else \
            (True if interactive is None else interactive)
        wide = out is not None or not sys.stdout.isatty()
        self.console = Console(file=out, width=100_000 if wide else None, highlight=False)
        self.err = Console(file=err, stderr=err is None, highlight=False, soft_wrap=True)
        self.timer = False
        self.format = "table"
        self.max_rows = terminal.DEFAULT_MAX_ROWS
        self.errors = 0
        self.completer = NameCompleter(backend.names)
        self._input, self._output, self._history = input, output, history_path

    # ---- reading ----------------------------------------------------------------------------------------------

    def _session(self) -> PromptSession:
        path = self._history or history_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            history = FileHistory(str(path))
        except OSError:
            history = InMemoryHistory()  # an unwritable home must not stop the shell
        keys = KeyBindings()

        @keys.add("enter")
        def _(event) -> None:
            buffer = event.current_buffer
            text = buffer.text.strip()
            if not text or text[0] in ".\\" or terminal.is_complete(text):
                buffer.validate_and_handle()
            else:
                buffer.insert_text("\n")

        return PromptSession(
            history=history, completer=self.completer, complete_while_typing=False, multiline=True,
            key_bindings=keys, lexer=PygmentsLexer(SqlLexer), input=self._input, output=self._output,
            prompt_continuation=lambda width, line, wrap: "...> ".rjust(width),
        )

    def run(self) -> int:
        """Read and run until ``.quit``, Ctrl-D or the end of the input; returns the number of failed
        statements."""
        if not self.interactive:
            self.run_script(self.stdin.read())
            return self.errors
        session = self._session()
        self.err.print(f"gateway shell ({escape(self.backend.where)}); .help for help, Ctrl-D to leave")
        while True:
            try:
                text = session.prompt("gateway> ")
            except KeyboardInterrupt:
                continue
            except EOFError:
                return self.errors
            if not self.handle(text):
                return self.errors

    def run_script(self, text: str) -> bool:
        """Run every command and statement of ``text`` (a dot command takes one line; SQL runs to its ``;``
        or to the end). Returns False when a ``.quit`` ended it."""
        pending: list[str] = []
        for line in text.splitlines():
            if not pending and line.strip()[:1] in (".", "\\"):
                if not self.handle(line):
                    return False
                continue
            pending.append(line)
            if terminal.is_complete("\n".join(pending)):
                self.handle("\n".join(pending))
                pending = []
        if "".join(pending).strip():
            self.handle("\n".join(pending))
        return True

    # ---- commands ---------------------------------------------------------------------------------------------

    def handle(self, text: str) -> bool:
        """Run one input (a dot command or SQL statements); returns False to leave the shell."""
        stripped = text.strip()
        if not stripped:
            return True
        if stripped[0] in ".\\":
            return self.command(stripped)
        for statement in terminal.split_statements(stripped):
            self.sql(statement)
        return True

    def command(self, text: str) -> bool:
        """One dot (or backslash) command; an unknown one is reported, not fatal."""
        name, _, rest = text.partition(" ")
        name, rest = name.lower(), rest.strip().rstrip(";").strip()
        if name in (".quit", ".exit", "\\q"):
            return False
        handlers = {
            ".help": lambda: self.console.print(escape(HELP)),
            ".timer": lambda: self._timer(rest),
            "\\timing": lambda: self._timer("off" if self.timer else "on"),
            ".explain": lambda: self._explain(rest),
            ".format": lambda: self._format(rest),
            ".maxrows": lambda: self._max_rows(rest),
            ".sources": lambda: self._list(self.backend.names().sources),
            ".tables": lambda: self._tables(rest),
            ".refresh": self.completer.refresh,
        }
        handler = handlers.get(name)
        if handler is None:
            self._error(f"unknown command {name!r}; .help lists the commands")
            return True
        try:
            handler()
        except GatewayError as exc:
            self._failed(exc)
        return True

    def _timer(self, value: str) -> None:
        if value.lower() not in ("on", "off"):
            self._error(".timer takes on or off")
            return
        self.timer = value.lower() == "on"
        self.console.print(f"timer {'on' if self.timer else 'off'}")

    def _explain(self, rest: str) -> None:
        analyze = rest.lower().startswith("analyze ")
        sql = rest[len("analyze "):] if analyze else rest
        if not sql.strip():
            self._error(".explain needs a query: .explain SELECT ...")
            return
        self.console.print(escape(self.backend.explain(sql.strip(), analyze=analyze)))

    def _format(self, value: str) -> None:
        if value not in terminal.TEXT_FORMATS:
            self._error(f".format takes one of {', '.join(terminal.TEXT_FORMATS)}")
            return
        self.format = value

    def _max_rows(self, value: str) -> None:
        if not value.isdigit():
            self._error(".maxrows takes a number (0: every row)")
            return
        self.max_rows = int(value)

    def _tables(self, source: str) -> None:
        names = self.backend.names()
        prefix = f"{source}." if source else ""
        qualified = [t for t in names.tables if t.count(".") == 2 and t.startswith(prefix)]
        self._list(qualified)

    def _list(self, items: list[str]) -> None:
        for item in items:
            self.console.print(escape(item))

    def sql(self, statement: str) -> None:
        """Run one statement and print its result (and its time with ``.timer on``)."""
        started = time.perf_counter()
        file = self.console.file
        result = terminal.sink(self.format, file, self.console, self.max_rows, hint=".maxrows 0")
        try:
            run = terminal.run_query(self.backend, statement, result, self.err)
        except GatewayError as exc:
            self._failed(exc)
            return
        except KeyboardInterrupt:
            self.err.print("cancelled")
            return
        if self.timer:
            self.console.print(f"Run Time: {time.perf_counter() - started:.3f} s, {run.rows:,} rows, "
                               f"{terminal.human_bytes(run.bytes)}")

    def _failed(self, exc: GatewayError) -> None:
        self.errors += 1
        self.err.print(f"[bold red]error[/] ({exc.code}): {escape(exc.message)}")

    def _error(self, message: str) -> None:
        self.errors += 1
        self.err.print(f"[bold red]error[/]: {escape(message)}")
