"""MySQL and MariaDB through connectorx.

Why connectorx: no ADBC driver for MySQL is published on PyPI; connectorx reads the MySQL binary protocol
in Rust straight into Arrow (``return_type="arrow_stream"`` hands back a ``RecordBatchReader``), with no
per-row Python objects, and can split one query over several connections by a numeric column. The
pure-Python clients (PyMySQL, mysqlclient) build a Python tuple per row, which is an order of magnitude
slower for the volumes a gateway moves.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any
from urllib.parse import unquote, urlsplit

import pyarrow as pa
from sqlglot import exp

from connectors.adbc_base import sql_literal
from connectors.arrow.streams import conformed_reader, merged_batches
from connectors.base import (
    KEY_TEXT_SHARE,
    PORTABLE_EXPRESSIONS,
    QUERY_SHAPE_EXPRESSIONS,
    READ_AS_TEXT,
    Capabilities,
    Connector,
    ForeignKey,
    Fragment,
    foreign_keys_from_rows,
    is_text,
    key_range,
)
from connectors.errors import SourceQueryError, SourceUnavailableError
from connectors.information_schema import InformationSchemaTables
from connectors.mysql_dialect import MYSQL_SOURCE_DIALECT
from connectors.mysql_statistics import SESSION_SETUP, MySQLStatistics

#: a dynamic filter of up to this many keys is an IN list of one node per key (``split`` counts them), beyond one
#: token of SQL text (``MySQLConnector.key_filter``)
KEY_NODES = 1_000
SYSTEM_SCHEMAS = ("information_schema", "mysql", "performance_schema", "sys")
# rust_decimal, which connectorx decodes DECIMAL with, holds 28 significant digits
MAX_BINARY_DECIMAL_DIGITS = 28
# connectorx messages that mean the server was not reached (as opposed to a failed statement)
_UNAVAILABLE = re.compile(r"connect|refused|Access denied|timed out|Unknown database|DriverError", re.IGNORECASE)

MYSQL_TYPES: dict[str, pa.DataType] = {
    "tinyint": pa.int8(), "smallint": pa.int16(), "mediumint": pa.int32(), "int": pa.int32(),
    "integer": pa.int32(), "bigint": pa.int64(),
    "float": pa.float32(), "double": pa.float64(), "real": pa.float64(),
    "char": pa.string(), "varchar": pa.string(), "tinytext": pa.string(), "text": pa.string(),
    "mediumtext": pa.string(), "longtext": pa.string(), "enum": pa.string(), "set": pa.string(),
    "json": pa.string(),
    "date": pa.date32(), "datetime": pa.timestamp("us"), "timestamp": pa.timestamp("us", tz="UTC"),
    "binary": pa.binary(), "varbinary": pa.binary(), "tinyblob": pa.binary(), "blob": pa.binary(),
    "mediumblob": pa.binary(), "longblob": pa.binary(),
}
_UNSIGNED = {"tinyint": pa.uint8(), "smallint": pa.uint16(), "mediumint": pa.uint32(), "int": pa.uint32(),
             "integer": pa.uint32(), "bigint": pa.uint64()}


def mysql_arrow_type(data_type: str, column_type: str, precision: int | None, scale: int | None
                     ) -> tuple[pa.DataType, bool]:
    """Map a MySQL/MariaDB column (information_schema DATA_TYPE, COLUMN_TYPE) to (Arrow type, read-as-text).

    ``tinyint(1)`` (BOOLEAN) -> bool; integers -> int8..int64 (unsigned -> uint8..uint64); DECIMAL(p,s) ->
    decimal128(p,s), read as text above 28 digits; FLOAT -> float32; DOUBLE -> float64; character types, ENUM,
    SET, JSON -> utf8; DATE -> date32; DATETIME -> timestamp[us]; TIMESTAMP -> timestamp[us, UTC] (sessions
    run in UTC); binary types -> binary; anything else (TIME, YEAR, BIT, spatial) -> utf8 read as text.
    """
    data_type, column_type = data_type.lower(), column_type.lower()
    if data_type == "tinyint" and re.match(r"tinyint\(1\)", column_type):
        return pa.bool_(), False
    if data_type in _UNSIGNED and "unsigned" in column_type:
        return _UNSIGNED[data_type], False
    if data_type == "decimal":
        p, s = precision or 10, scale or 0
        arrow = pa.decimal128(p, s) if p <= 38 else pa.decimal256(p, s)
        return arrow, p > MAX_BINARY_DECIMAL_DIGITS
    if data_type in MYSQL_TYPES:
        return MYSQL_TYPES[data_type], False
    return pa.string(), True


class MySQLConnector(InformationSchemaTables, MySQLStatistics, Connector):
    """A MySQL or MariaDB server; each database visible to the user (but the system ones) is a schema.

    Capabilities: projection, filters, LIMIT, and whole single-source queries, except anything that compares,
    groups, orders or deduplicates text: the default collations (``utf8mb4_general_ci`` and kin) ignore case,
    accents and trailing spaces, so ``'a' = 'A'`` holds there and not in DataFusion. Floating-point sums,
    AVG and division are not pushed.

    Options: ``uri`` (``mysql://user[:password]@host:port/db``; a password comes from the environment
    through the config's ``${VAR}`` expansion); ``parallel_readers`` (default 4) and ``parallel_min_rows``
    (default 500,000): a scan of a larger table is read in primary-key ranges over that many connections.
    """

    kind = "mysql"
    dialect = MYSQL_SOURCE_DIALECT  # MySQL's, with outputs connectorx can read (connectors.mysql_dialect)
    capabilities = Capabilities(
        full_query=True,
        expressions=PORTABLE_EXPRESSIONS | QUERY_SHAPE_EXPRESSIONS,
        ordered_text=False,
        text_equality=False,
        offset_without_limit=False,
        full_join=False,
        cheap_grouping=False,
        date_arithmetic=False,
        failing_casts=False,
        timestamp_arithmetic=False,
        limit_in_subqueries=False,
    )

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        super().__init__(name, options)
        self.uri = options["uri"]
        parts = urlsplit(self.uri)
        self.database = unquote(parts.path.lstrip("/")) or None
        self._lock = threading.Lock()
        self._key_ranges: dict[tuple[str, str], tuple[float, tuple | None]] = {}

    def key_filter(self, column: exp.Expression, keys: pa.Array) -> exp.Expression | None:
        """``column IN (...)`` with integer, decimal, date or text keys written as SQL text, not as a sqlglot
        literal per key (108,782 integer keys: 8 s to build, copy and render as nodes, 0.1 s as text; decimals
        were 1 ms a key), up to ``KEY_TEXT_SHARE`` of the server's ``max_allowed_packet`` (a 4 MiB list under
        MariaDB's default 16 MiB), past it a range (``key_range``; none for text). Up to ``KEY_NODES`` keys each
        is its own node (``split`` counts them), beyond one token. Text keys holding a backslash or a control
        character are hex strings in utf8mb4 (read alike whatever sql_mode says of backslashes). Other key
        types: the default."""
        values = _mysql_literals(keys)
        if values is None:
            return super().key_filter(column, keys)
        if sum(map(len, values)) + len(values) > self._max_packet() * KEY_TEXT_SHARE:
            return key_range(column, keys)
        if len(values) <= KEY_NODES:
            return exp.In(this=column.copy(), expressions=[exp.Var(this=v) for v in values])
        return exp.In(this=column.copy(), expressions=[exp.Var(this=",".join(values))])

    def _max_packet(self) -> int:
        """The server's ``max_allowed_packet`` in bytes (asked once; 4 MiB, the smallest default, if it cannot
        be read)."""
        if "_packet" not in self.__dict__:
            try:
                self._packet = int(self.fetch_table("SELECT @@max_allowed_packet AS p").column(0)[0].as_py())
            except Exception:  # the limit only sizes key lists
                self._packet = 4 << 20
        return self._packet

    def _read(self, sql: str, stream: bool = False):
        import connectorx as cx  # loaded when a MariaDB/MySQL source first reads

        try:
            result = cx.read_sql(self.uri, sql, return_type="arrow_stream" if stream else "arrow",
                                 pre_execution_query=SESSION_SETUP)
        except BaseException as exc:
            error = self._source_error(exc, sql)
            if error is exc:
                raise
            raise error from exc
        return self._batches(result, sql) if stream else result

    def _batches(self, reader, sql: str):
        """The stream's batches; a failure while reading (connectorx raises a Rust panic for a statement the
        server refuses) is this source's error, as one at the start would be."""
        try:
            yield from reader
        except BaseException as exc:
            error = self._source_error(exc, sql)
            if error is exc:
                raise
            raise error from exc

    def _source_error(self, exc: BaseException, sql: str) -> BaseException:
        if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
            return exc
        message = str(exc).strip().splitlines()[0][:500] if str(exc).strip() else type(exc).__name__
        if _UNAVAILABLE.search(message):
            return SourceUnavailableError(self.name, message)
        return SourceQueryError(self.name, message, sql)

    def fetch_table(self, sql: str) -> pa.Table:
        return self._read(sql)

    def cancel_tagged(self, tag: str) -> int:
        """``KILL QUERY`` for each running statement (but this connection's) whose text holds ``tag``
        (``information_schema.PROCESSLIST``); the number cancelled."""
        import connectorx as cx

        ids = self._read("SELECT ID AS id FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() "
                         f"AND COMMAND = 'Query' AND INSTR(INFO, {sql_literal(tag)}) > 0").column(0).to_pylist()
        for thread in ids:  # connectorx runs statements only as a query's set-up
            cx.read_sql(self.uri, "SELECT 1 AS cancelled", return_type="arrow",
                        pre_execution_query=[*SESSION_SETUP, f"KILL QUERY {int(thread)}"])
        return len(ids)

    def fingerprint(self, schema: str, table: str) -> str:
        """MariaDB's InnoDB log sequence number, for an InnoDB table; "" (unknown) otherwise.

        Correct for the same reason as PostgreSQL's WAL position: every committed change to an InnoDB
        table (INSERT, UPDATE, DELETE, TRUNCATE) writes redo log first and the LSN only grows, so an unchanged
        LSN means no committed change; any write in the server moves it (a refetch, never a stale answer).
        MySQL does not expose ``Innodb_lsn_current``; there the fingerprint is unknown and only TTLs apply.
        """
        rows = self._read(
            "SELECT t.ENGINE AS engine, s.VARIABLE_VALUE AS lsn FROM information_schema.TABLES t "
            "LEFT JOIN information_schema.GLOBAL_STATUS s ON s.VARIABLE_NAME = 'INNODB_LSN_CURRENT' "
            f"WHERE t.TABLE_SCHEMA = {sql_literal(schema)} AND t.TABLE_NAME = {sql_literal(table)}"
        ).to_pylist()
        if not rows or (rows[0]["engine"] or "").lower() != "innodb" or not rows[0]["lsn"]:
            return ""
        return f"lsn:{rows[0]['lsn']}"

    def list_schemas(self) -> list[str]:
        rows = self._read("SELECT SCHEMA_NAME AS s FROM information_schema.SCHEMATA ORDER BY 1")
        return [s for s in rows.column(0).to_pylist() if s.lower() not in SYSTEM_SCHEMAS]

    def table_schema(self, schema: str, table: str) -> pa.Schema:
        rows = self._read(
            "SELECT COLUMN_NAME AS name, DATA_TYPE AS data_type, COLUMN_TYPE AS column_type, "
            "CAST(NUMERIC_PRECISION AS SIGNED) AS p, CAST(NUMERIC_SCALE AS SIGNED) AS s, IS_NULLABLE AS nullable "
            f"FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {sql_literal(schema)} "
            f"AND TABLE_NAME = {sql_literal(table)} ORDER BY ORDINAL_POSITION"
        ).to_pylist()
        fields = []
        for r in rows:
            arrow, as_text = mysql_arrow_type(r["data_type"], r["column_type"], r["p"], r["s"])
            fields.append(pa.field(r["name"], arrow, nullable=r["nullable"] == "YES",
                                   metadata={READ_AS_TEXT: b"1"} if as_text else None))
        return pa.schema(fields)

    def primary_key(self, schema: str, table: str) -> list[str]:
        rows = self._read(
            "SELECT COLUMN_NAME AS c FROM information_schema.KEY_COLUMN_USAGE "
            f"WHERE TABLE_SCHEMA = {sql_literal(schema)} AND TABLE_NAME = {sql_literal(table)} "
            "AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION"
        )
        return rows.column(0).to_pylist()

    def _table_info(self, schema: str, table: str) -> dict | None:
        """TABLE_TYPE (kind), TABLE_ROWS (r) and DATA_LENGTH (b) of a table; None when it does not exist."""
        rows = self._read(
            "SELECT TABLE_TYPE AS kind, CAST(TABLE_ROWS AS SIGNED) AS r, CAST(DATA_LENGTH AS SIGNED) AS b "
            "FROM information_schema.TABLES "
            f"WHERE TABLE_SCHEMA = {sql_literal(schema)} AND TABLE_NAME = {sql_literal(table)}"
        ).to_pylist()
        return rows[0] if rows else None

    def table_expression(self, schema: str, table: str) -> exp.Table:
        return exp.table_(table, db=schema, quoted=True)

    def scan(self, fragment: Fragment) -> pa.RecordBatchReader:
        """Stream the fragment through connectorx, conformed to ``fragment.schema``. A scan (or inner-join
        group) over a large table is read in ranges of its integer primary key, over several connections at
        once (``split``)."""
        self.scans += 1
        statements = self.split(fragment)
        if statements is None:
            return conformed_reader(fragment.schema, self._read(fragment.sql, stream=True))
        return conformed_reader(fragment.schema, merged_batches(
            [lambda sql=sql: self._read(sql, stream=True) for sql in statements]))

    #: seconds a table's key bounds are remembered (stale bounds only move the split points: the first and
    #: last ranges are open)
    KEY_RANGE_TTL_S = 300.0

    def split(self, fragment: Fragment) -> list[str] | None:
        """The fragment's SQL per reader, or None when it runs as one statement. MySQL and MariaDB run each
        statement on one thread; ranges of the first table's clustered (primary) key are read side by side.
        Every row of an inner-join group belongs to exactly one row of that table, so the ranges partition
        the result. Measured on this 2-core machine (TPC-H SF1 partsupp, 800,000 rows, 4 columns): 1 reader
        0.67 s, 2 readers 0.55 s, 4 readers 0.42 s."""
        readers = int(self.options.get("parallel_readers", 4))
        select = fragment.ast
        first = _first_table_of_inner_joins(select) if readers >= 2 else None
        if first is None:
            return None
        bounds = self._key_range(first.args["db"].name, first.name)
        if bounds is None or _filters_by_key_set(select, bounds[0]):
            return None
        column, low, high = bounds
        step = (high - low + 1) / readers
        cuts = [low + round(step * i) for i in range(1, readers)]
        key = exp.column(column, table=first.alias_or_name, quoted=True)
        statements = []
        for i in range(readers):
            conditions = []
            if i > 0:
                conditions.append(exp.GTE(this=key.copy(), expression=exp.Literal.number(cuts[i - 1])))
            if i < readers - 1:
                conditions.append(exp.LT(this=key.copy(), expression=exp.Literal.number(cuts[i])))
            statements.append(select.copy().where(exp.and_(*conditions)).sql(dialect=self.dialect))
        return statements

    def _key_range(self, schema: str, table: str) -> tuple[str, int, int] | None:
        """(first primary-key column, its min, its max) of a table of at least ``parallel_min_rows`` rows
        whose primary key starts with an integer column; None otherwise. Remembered ``KEY_RANGE_TTL_S``."""
        seen = self._key_ranges.get((schema, table))
        if seen is not None and time.monotonic() - seen[0] < self.KEY_RANGE_TTL_S:
            return seen[1]
        found = None
        rows = (self._table_info(schema, table) or {}).get("r") or 0
        if rows >= int(self.options.get("parallel_min_rows", 500_000)):
            key = self.primary_key(schema, table)
            if key and pa.types.is_integer(self.table_schema(schema, table).field(key[0]).type):
                column = exp.column(key[0], quoted=True).sql(dialect=self.dialect)
                name = exp.table_(table, db=schema, quoted=True).sql(dialect=self.dialect)
                bounds = self._read(f"SELECT MIN({column}) AS lo, MAX({column}) AS hi FROM {name}").to_pylist()[0]
                if bounds["lo"] is not None and bounds["hi"] > bounds["lo"]:
                    found = (key[0], int(bounds["lo"]), int(bounds["hi"]))
        self._key_ranges[(schema, table)] = (time.monotonic(), found)
        return found

    def foreign_keys(self, schema: str, table: str) -> list[ForeignKey]:
        """From information_schema.KEY_COLUMN_USAGE (columns in key order) and REFERENTIAL_CONSTRAINTS (rules)."""
        rows = self._read(
            "SELECT k.CONSTRAINT_NAME AS name, CAST(k.ORDINAL_POSITION AS SIGNED) AS seq, k.COLUMN_NAME AS col, "
            "k.REFERENCED_TABLE_SCHEMA AS ref_schema, k.REFERENCED_TABLE_NAME AS ref_table, "
            "k.REFERENCED_COLUMN_NAME AS ref_col, r.UPDATE_RULE AS upd, r.DELETE_RULE AS del "
            "FROM information_schema.KEY_COLUMN_USAGE k JOIN information_schema.REFERENTIAL_CONSTRAINTS r "
            "ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME "
            "AND r.TABLE_NAME = k.TABLE_NAME "
            f"WHERE k.TABLE_SCHEMA = {sql_literal(schema)} AND k.TABLE_NAME = {sql_literal(table)} "
            "AND k.REFERENCED_TABLE_NAME IS NOT NULL ORDER BY 1, 2"
        ).to_pylist()
        return foreign_keys_from_rows(rows)


def _first_table_of_inner_joins(select: exp.Expression | None) -> exp.Table | None:
    """The first table (schema-qualified) of a plain select over inner joins, whose key ranges ``split`` reads side
    by side; None for any other shape (grouping, ordering, limits, DISTINCT, WITH, aggregates, sub-queries, outer
    joins)."""
    if not isinstance(select, exp.Select):
        return None
    if any(select.args.get(k) for k in ("group", "having", "order", "limit", "offset", "distinct", "with", "with_")):
        return None
    if select.find(exp.AggFunc, exp.Subquery) or any(
        j.side or (j.kind or "").upper() not in ("", "INNER", "CROSS") for j in select.args.get("joins") or []
    ):
        return None
    first = select.find(exp.From).this
    return first if isinstance(first, exp.Table) and first.args.get("db") else None


def _filters_by_key_set(select: exp.Select, column: str) -> bool:
    """Whether ``select`` filters by a key set (a dynamic filter: an IN list on ``column`` or one of more than 50
    values): index lookups of few rows, which ranges would only spread over more connections."""
    where = select.args.get("where")
    return any(len(condition.expressions) > 50 or _one_token_key_list(condition)
               or (isinstance(condition.this, exp.Column) and condition.this.name == column)
               for condition in (where.find_all(exp.In) if where is not None else []))


def _one_token_key_list(condition: exp.In) -> bool:
    """An IN list ``key_filter`` wrote as one token (past ``KEY_NODES`` keys)."""
    values = condition.expressions
    return len(values) == 1 and isinstance(values[0], exp.Var) and "," in values[0].name


def _mysql_literals(keys: pa.Array) -> list[str] | None:
    """``keys`` as MySQL/MariaDB literals (exact: integers, decimals as exact-value literals, ``DATE'...'``,
    quoted text), or None for other key types."""
    kind = keys.type
    if pa.types.is_integer(kind):
        return [str(v) for v in keys.to_pylist()]
    if pa.types.is_decimal(kind) and kind.precision <= 65:  # MySQL's longest exact-value literal
        return [format(v, "f") for v in keys.to_pylist()]
    if pa.types.is_date(kind):
        return [f"DATE'{v.isoformat()}'" for v in keys.to_pylist()]
    if is_text(kind):
        return [_mysql_text(v) for v in keys.to_pylist()]
    return None


_NOT_PLAIN = re.compile(r"[\x00-\x1f\\]")


def _mysql_text(value: str) -> str:
    """A text literal: ``'...'`` with quotes doubled, or, holding a backslash or a control character (which
    sql_mode and the parser may read otherwise), ``_utf8mb4 X'...'``."""
    if _NOT_PLAIN.search(value):
        return f"_utf8mb4 X'{value.encode().hex()}'"
    return "'" + value.replace("'", "''") + "'"
