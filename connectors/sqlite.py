"""SQLite through adbc-driver-sqlite."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlglot
from sqlglot import exp

from connectors.adbc_base import AdbcConnector, sql_literal
from connectors.base import (
    PORTABLE_EXPRESSIONS,
    READ_AS_TEXT,
    Capabilities,
    ForeignKey,
    Fragment,
    TableStatistics,
    foreign_keys_from_rows,
)
from connectors.errors import SourceQueryError, SourceUnavailableError
from connectors.statistics import SAMPLE_ROWS, sample_column_statistics, typed_sample

#: how long a gateway statement waits for a writer's commit (which briefly excludes readers in rollback-journal
#: mode) before failing with "database is locked"
BUSY_TIMEOUT_MS = 5000


def sqlite_arrow_type(declared: str) -> tuple[pa.DataType, bool]:
    """Map a SQLite declared column type to (Arrow type, read-as-text).

    SQLite stores values by affinity, not by declared type, so the declared type is the contract:
    ``INTEGER``/``INT``/``BIGINT`` -> int64; ``BOOLEAN`` -> bool (0/1); ``REAL``/``DOUBLE``/``FLOAT`` ->
    float64; ``DECIMAL(p,s)``/``NUMERIC(p,s)`` -> decimal128(p,s), read as text so no digit is lost to a
    binary float; ``DATE`` -> date32 and ``DATETIME``/``TIMESTAMP`` -> timestamp[us] (ISO-8601 text);
    ``TEXT``/``CHAR``/``CLOB`` -> utf8; ``BLOB`` -> binary; anything else -> utf8 read as text.
    """
    upper = declared.upper().strip()
    decimal = re.match(r"(DECIMAL|NUMERIC)\s*\(\s*(\d+)\s*(?:,\s*(\d+))?\s*\)", upper)
    if decimal:
        return pa.decimal128(int(decimal.group(2)), int(decimal.group(3) or 0)), True
    if upper in ("BOOLEAN", "BOOL"):
        return pa.bool_(), False
    if "INT" in upper:
        return pa.int64(), False
    if upper == "DATE":
        return pa.date32(), False
    if upper in ("DATETIME", "TIMESTAMP"):
        return pa.timestamp("us"), False
    if any(t in upper for t in ("CHAR", "CLOB", "TEXT")):
        return pa.string(), False
    if upper == "BLOB":
        return pa.binary(), False
    if any(t in upper for t in ("REAL", "FLOA", "DOUB")):
        return pa.float64(), False
    return pa.string(), True


def _witness_literal(field: pa.Field) -> exp.Expression:
    """A value of the SQLite storage class the driver must infer for ``field`` (see ``fragment_sql``)."""
    t = field.type
    if field.metadata and field.metadata.get(READ_AS_TEXT) == b"1":
        return exp.Literal.string("")
    if pa.types.is_integer(t) or pa.types.is_boolean(t):
        return exp.Literal.number(0)
    if pa.types.is_floating(t):
        return exp.Literal.number("0.5")
    if pa.types.is_binary(t):
        return sqlglot.parse_one("X''", read="sqlite")
    return exp.Literal.string("")


#: a table whose rowid spans at most this many values is counted (``count(*)`` over its smallest b-tree: a few
#: milliseconds per 100,000 rows) instead of estimated from the span
COUNT_MAX_SPAN = 1_000_000


class SQLiteConnector(AdbcConnector):
    """A SQLite database file; one schema, ``main``.

    Capabilities: projection, filter and limit only. LIKE is not pushed (SQLite's LIKE ignores ASCII case,
    DataFusion's does not); aggregates are not pushed (SQLite's dynamic typing makes result types differ).

    The ADBC SQLite driver infers each column's Arrow type from the first batch; a batch whose first rows
    are NULL would be inferred as int64 and fail on the first string. Every fragment therefore starts with
    one typed witness row (``SELECT <typed literals> UNION ALL SELECT * FROM (<fragment>)``; SQLite emits
    UNION ALL branches in order), which the reader drops.

    The gateway never blocks the database's own writers for longer than one of its statements runs: connections
    are read-only and in autocommit mode, so each statement is its own read transaction, ended when the statement
    finishes or its cursor is closed; an idle pooled connection holds no lock and no snapshot. In WAL mode
    readers never block writers; in rollback-journal mode a writer's commit waits for the statements reading at
    that moment (SQLite's SHARED lock), and a statement waits up to ``BUSY_TIMEOUT_MS`` for a commit.

    Options: ``path`` (the database file; it must exist), ``pool_size``.
    """

    kind = "sqlite"
    dialect = "sqlite"
    capabilities = Capabilities(full_query=False, expressions=PORTABLE_EXPRESSIONS, case_sensitive_like=False,
                                temporal_as_text=True, date_arithmetic=False, timestamp_arithmetic=False,
                                failing_casts=False)
    witness_rows = 1

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        super().__init__(name, options)
        self.path = str(options["path"])

    def _connect(self):
        import adbc_driver_sqlite.dbapi as sqlite  # loaded when a source of this kind first connects

        if not os.path.exists(self.path):
            raise SourceUnavailableError(self.name, f"database file {self.path} does not exist")
        # read-only URI: the gateway never writes to sources. Autocommit: ADBC's default (off) leaves every
        # connection inside an open transaction after its first read, holding a SHARED lock (rollback journal)
        # or an old snapshot (WAL) while it sits in the pool, so writers failed with "database is locked"
        conn = sqlite.connect(f"{Path(os.path.abspath(self.path)).as_uri()}?mode=ro", autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                cur.fetchall()
        except BaseException:
            conn.close()
            raise
        return conn

    def list_schemas(self) -> list[str]:
        return ["main"]

    def list_tables(self, schema: str) -> list[str]:
        rows = self.fetch_table(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
            "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY 1"
        )
        return rows.column(0).to_pylist()

    def table_type(self, schema: str, table: str) -> str:
        rows = self.fetch_table(f"SELECT type FROM sqlite_master WHERE name = {sql_literal(table)}")
        return "VIEW" if rows.num_rows and rows.column(0)[0].as_py() == "view" else "TABLE"

    def _table_info(self, table: str) -> list[dict]:
        return self.fetch_table(
            f"SELECT name, type, \"notnull\", pk FROM pragma_table_info({sql_literal(table)}) ORDER BY cid"
        ).to_pylist()

    def table_schema(self, schema: str, table: str) -> pa.Schema:
        fields = []
        for col in self._table_info(table):
            arrow_type, as_text = sqlite_arrow_type(col["type"] or "")
            fields.append(pa.field(
                col["name"], arrow_type, nullable=not col["notnull"],
                metadata={READ_AS_TEXT: b"1"} if as_text else None,
            ))
        return pa.schema(fields)

    def primary_key(self, schema: str, table: str) -> list[str]:
        cols = sorted((c for c in self._table_info(table) if c["pk"]), key=lambda c: c["pk"])
        return [c["name"] for c in cols]

    def statistics(self, schema: str, table: str) -> TableStatistics:
        """Rows from ``sqlite_stat1`` (what ANALYZE stored) or else the span of the rowid (``max(rowid) -
        min(rowid) + 1``: two index probes), counted exactly when the span is at most ``COUNT_MAX_SPAN`` (a
        sparse INTEGER PRIMARY KEY, 64 keys spread over 0..4,340, spans 4,341); bytes: the database file's size;
        per-column distinct, null fraction, min/max and common values from a bounded sample of at most
        ``SAMPLE_ROWS`` rows (ten rowid slices spread over the table, or the first rows), with the distinct count
        of a column that leads an index taken from ``sqlite_stat1``. Views have no rows or columns (unknown). Raises
        SourceUnavailableError, SourceQueryError."""
        size = os.path.getsize(self.path) if os.path.exists(self.path) else None
        if self.table_type(schema, table) != "TABLE":
            return TableStatistics(rows=None, bytes=size)
        rows, leading = self._stat1(table)
        span = None
        try:
            span = self.fetch_table(
                f"SELECT min(rowid) AS lo, max(rowid) AS hi FROM {self.table_expression(schema, table).sql('sqlite')}"
            ).to_pylist()[0]
        except SourceQueryError:  # a WITHOUT ROWID table
            pass
        if rows is None and span is not None:
            rows = 0 if span["lo"] is None else span["hi"] - span["lo"] + 1
            if 0 < rows <= COUNT_MAX_SPAN:  # sparse keys (gaps, deletions) make the span too large: count
                name = self.table_expression(schema, table).sql("sqlite")
                rows = self.fetch_table(f"SELECT count(*) AS n FROM {name}").column(0)[0].as_py()
        fields = self.table_schema(schema, table)
        sample = self._sample(schema, table, fields, span if rows and rows > SAMPLE_ROWS else None)
        if rows is None and sample.num_rows < SAMPLE_ROWS:
            rows = sample.num_rows
        columns = sample_column_statistics(sample, rows)
        for column, distinct in leading.items():
            if column in columns:
                columns[column] = dataclasses.replace(columns[column], distinct=float(distinct),
                                                      origin=f"sqlite_stat1, {columns[column].origin}")
        return TableStatistics(rows=rows, bytes=size, columns=columns)

    def _stat1(self, table: str) -> tuple[int | None, dict[str, float]]:
        """(rows, distinct values of each column leading an index) from ``sqlite_stat1``: ((None, {}) when the
        database was never analyzed). A stat line reads ``rows rows-per-value-of-first-column ...``."""
        try:
            found = self.fetch_table(
                "SELECT s.idx AS idx, s.stat AS stat, (SELECT i.name FROM pragma_index_info(s.idx) i "
                "WHERE i.seqno = 0) AS col FROM sqlite_stat1 s "
                f"WHERE s.tbl = {sql_literal(table)}"
            ).to_pylist()
        except SourceQueryError:  # no sqlite_stat1: never analyzed
            return None, {}
        rows, leading = None, {}
        for r in found:
            numbers = [int(p) for p in (r["stat"] or "").split() if p.isdigit()]
            if not numbers:
                continue
            rows = max(rows or 0, numbers[0])
            if r["col"] is not None and len(numbers) > 1 and numbers[1]:
                leading[r["col"]] = max(leading.get(r["col"], 0), numbers[0] / numbers[1])
        return rows, leading

    def _sample(self, schema: str, table: str, fields: pa.Schema, span: dict | None) -> pa.Table:
        """At most ``SAMPLE_ROWS`` rows, typed as ``fields``: ten slices of the rowid ``span`` when given,
        else the first rows. Read like a fragment (a typed witness row first, dropped here)."""
        name = self.table_expression(schema, table).sql(dialect="sqlite")
        columns = ", ".join(exp.column(f.name, quoted=True).sql(dialect="sqlite") for f in fields)
        sql = f"SELECT {columns} FROM {name} LIMIT {SAMPLE_ROWS}"
        if span is not None and span["lo"] is not None:
            step = (span["hi"] - span["lo"]) / 10
            slices = [f"WHERE rowid >= {span['lo'] + round(step * i)} ORDER BY rowid" for i in range(9)]
            sql = " UNION ALL ".join(f"SELECT * FROM (SELECT {columns} FROM {name} {where} LIMIT {SAMPLE_ROWS // 10})"
                                     for where in [*slices, "ORDER BY rowid DESC"])
        fragment = Fragment(id="statistics", source=self.name, sql=sql, schema=fields, tables=[])
        return typed_sample(self.fetch_table(self.fragment_sql(fragment)).slice(self.witness_rows), fields)

    def fingerprint(self, schema: str, table: str) -> str:
        try:
            st = os.stat(self.path)
        except OSError:
            return ""
        return f"{st.st_mtime_ns}:{st.st_size}"

    def table_expression(self, schema: str, table: str) -> exp.Table:
        return exp.table_(table, quoted=True)

    def fragment_sql(self, fragment: Fragment) -> str:
        witness = exp.select(*(
            exp.alias_(_witness_literal(f), f.name, quoted=True) for f in fragment.schema
        ))
        return f"{witness.sql(dialect='sqlite')} UNION ALL SELECT * FROM ({fragment.sql})"

    def foreign_keys(self, schema: str, table: str) -> list[ForeignKey]:
        """From pragma_foreign_key_list; a key that names no parent columns references the parent's PK."""
        rows = self.fetch_table(
            'SELECT id, seq, "table" AS ref_table, "from" AS col, "to" AS ref_col, on_update AS upd, '
            f"on_delete AS del FROM pragma_foreign_key_list({sql_literal(table)}) ORDER BY id, seq"
        ).to_pylist()
        for r in rows:
            r["name"], r["ref_schema"] = None, "main"
            if r["ref_col"] is None:
                parent_pk = self.primary_key(schema, r["ref_table"])
                r["ref_col"] = parent_pk[r["seq"]] if r["seq"] < len(parent_pk) else r["col"]
        return foreign_keys_from_rows(rows)
