"""Statistics of MySQL and MariaDB tables: MariaDB's engine-independent ``mysql.column_stats``, index
cardinality (InnoDB's persistent statistics, else ``information_schema.STATISTICS``), and a bounded sample for the
rest.

``MySQLStatistics`` is a mixin of ``connectors.mysql.MySQLConnector``; it reads through the connector's own
``_read``, ``_source_error``, ``_table_info``, ``table_schema`` and ``primary_key``.
"""

from __future__ import annotations

import dataclasses
import random

import pyarrow as pa
from sqlglot import exp

from connectors.adbc_base import sql_literal
from connectors.base import READ_AS_TEXT, ColumnStatistics, TableStatistics
from connectors.errors import SourceQueryError
from connectors.statistics import (
    SAMPLE_ROWS,
    STATEMENT_TIMEOUT_S,
    sample_column_statistics,
    typed_sample,
    value_from_text,
)

# connectorx runs these on each connection before the query: UTC for TIMESTAMP columns
SESSION_SETUP = ["SET time_zone = '+00:00'"]

#: index range reads a sample is made of (each ``SAMPLE_ROWS // SLICES`` rows)
SLICES = 50


class MySQLStatistics:
    """``statistics`` for ``MySQLConnector`` (its ``uri``, ``_read``, ``_source_error``, ``_table_info``,
    ``table_schema`` and ``primary_key``), with statements bounded by ``STATEMENT_TIMEOUT_S``."""

    def statistics(self, schema: str, table: str) -> TableStatistics:
        """Rows (``information_schema.TABLES.TABLE_ROWS``: exact for MyISAM/Aria, an estimate for InnoDB),
        bytes (``DATA_LENGTH``) and per-column statistics: MariaDB's engine-independent statistics
        (``mysql.column_stats``, gathered by ANALYZE TABLE) where present and readable; else distinct counts
        from index cardinality (``_index_cardinality``, the first column of each index) and a bounded sample of
        at most ``SAMPLE_ROWS`` rows (slices from random points of an integer primary key, else the first rows)
        for null fractions, min/max and common values. Statements run with a
        ``STATEMENT_TIMEOUT_S`` limit. Views have no rows or columns (unknown). Raises SourceUnavailableError,
        SourceQueryError."""
        info = self._table_info(schema, table)
        if info is None:
            return TableStatistics(None, None)
        if (info["kind"] or "").upper() == "VIEW":
            return TableStatistics(None, None)
        rows = info["r"]
        fields = self.table_schema(schema, table)
        columns = self._column_stats(schema, table, fields, rows)
        missing = [f for f in fields if f.name not in columns]
        if missing:
            columns.update(self._sampled_statistics(schema, table, missing, rows))
        for column, (distinct, unique) in self._index_cardinality(schema, table).items():
            known = columns.get(column)
            if known is None or known.origin == "mysql.column_stats":
                continue
            if unique and rows is not None:
                distinct = rows * (1 - (known.null_fraction or 0))
            elif (known.distinct or 0) < SAMPLE_ROWS / 10:
                continue  # the sample saw each value ~10 times or more: more precise than the engine's estimate
            else:  # a cardinality below what the sample saw is stale (InnoDB recalculates in the background)
                distinct = max(distinct, known.distinct or 0)
            columns[column] = dataclasses.replace(known, distinct=float(distinct), origin=f"index, {known.origin}")
        return TableStatistics(rows, info["b"], columns)

    def _bounded_read(self, sql: str) -> pa.Table:
        """``_read`` with a ``STATEMENT_TIMEOUT_S`` limit (MariaDB ``max_statement_time``, MySQL
        ``max_execution_time``)."""
        import connectorx as cx  # loaded when a MariaDB/MySQL source first reads

        if "_mariadb" not in self.__dict__:
            self.__dict__["_mariadb"] = "mariadb" in str(self._read("SELECT VERSION() AS v").column(0)[0]).lower()
        limit = (f"SET SESSION max_statement_time = {STATEMENT_TIMEOUT_S}" if self.__dict__["_mariadb"]
                 else f"SET SESSION max_execution_time = {int(STATEMENT_TIMEOUT_S * 1000)}")
        try:
            return cx.read_sql(self.uri, sql, return_type="arrow", pre_execution_query=[*SESSION_SETUP, limit])
        except BaseException as exc:
            error = self._source_error(exc, sql)
            if error is exc:
                raise
            raise error from exc

    def _column_stats(self, schema: str, table: str, fields: pa.Schema, rows: int | None
                      ) -> dict[str, ColumnStatistics]:
        """MariaDB's ``mysql.column_stats`` for the table: {} where the table is absent (MySQL), unreadable
        (no privilege) or has no rows for it (never analyzed)."""
        try:
            found = self._bounded_read(
                "SELECT column_name AS c, CAST(min_value AS CHAR) AS lo, CAST(max_value AS CHAR) AS hi, "
                "CAST(nulls_ratio AS DOUBLE) AS nulls, CAST(avg_frequency AS DOUBLE) AS freq "
                f"FROM mysql.column_stats WHERE db_name = {sql_literal(schema)} "
                f"AND table_name = {sql_literal(table)}"
            ).to_pylist()
        except SourceQueryError:
            return {}
        types = {f.name: f.type for f in fields}
        out = {}
        for r in found:
            if r["c"] not in types:
                continue
            kind, nulls = types[r["c"]], r["nulls"]
            distinct = (rows * (1 - (nulls or 0)) / r["freq"]) if rows is not None and r["freq"] else None
            out[r["c"]] = ColumnStatistics(distinct=distinct, null_fraction=nulls,
                                           min=value_from_text(r["lo"], kind), max=value_from_text(r["hi"], kind),
                                           origin="mysql.column_stats")
        return out

    def _index_cardinality(self, schema: str, table: str) -> dict[str, tuple[int, bool]]:
        """(distinct values, unique) of each column that leads an index, and whether a unique index is on that
        column alone. The distinct values are InnoDB's persistent statistics (``mysql.innodb_index_stats``,
        ``n_diff_pfx01``) where readable, else ``information_schema.STATISTICS``'s CARDINALITY (the storage
        engine's estimate), the largest when several indexes start with the column. MariaDB 10.11 reports the
        CARDINALITY of a composite primary key's first column as the key's (TPC-H lineitem's ``l_orderkey``:
        5,814,915 for 1,518,942 values; partsupp's ``ps_partkey``: 789,832 for 199,693)."""
        found = self._read(
            "SELECT s.COLUMN_NAME AS c, CAST(COALESCE(s.CARDINALITY, 0) AS SIGNED) AS n, "
            "CAST(s.NON_UNIQUE AS SIGNED) AS non_unique, CAST((SELECT COUNT(*) FROM information_schema.STATISTICS o "
            "WHERE o.TABLE_SCHEMA = s.TABLE_SCHEMA AND o.TABLE_NAME = s.TABLE_NAME "
            "AND o.INDEX_NAME = s.INDEX_NAME) AS SIGNED) AS width, s.INDEX_NAME AS i "
            f"FROM information_schema.STATISTICS s WHERE s.TABLE_SCHEMA = {sql_literal(schema)} "
            f"AND s.TABLE_NAME = {sql_literal(table)} AND s.SEQ_IN_INDEX = 1"
        ).to_pylist()
        persistent = self._innodb_leading_distinct(schema, table)
        out: dict[str, tuple[int, bool]] = {}
        for r in found:
            n, unique = out.get(r["c"], (0, False))
            out[r["c"]] = (max(n, persistent.get(r["i"], r["n"])),
                           unique or (not r["non_unique"] and r["width"] == 1))
        return out

    def _innodb_leading_distinct(self, schema: str, table: str) -> dict[str, int]:
        """Index name -> distinct values of its first column by InnoDB's persistent statistics
        (``mysql.innodb_index_stats``); {} where that table is absent or unreadable (no privilege)."""
        try:
            rows = self._bounded_read(
                "SELECT index_name AS i, CAST(stat_value AS SIGNED) AS n FROM mysql.innodb_index_stats "
                f"WHERE database_name = {sql_literal(schema)} AND table_name = {sql_literal(table)} "
                "AND stat_name = 'n_diff_pfx01'"
            ).to_pylist()
        except SourceQueryError:
            return {}
        return {r["i"]: int(r["n"]) for r in rows if r["n"] is not None}

    def _sampled_statistics(self, schema: str, table: str, fields: list[pa.Field], rows: int | None
                            ) -> dict[str, ColumnStatistics]:
        """Statistics of a bounded sample (``SAMPLE_ROWS`` rows): ``SLICES`` slices from random points of the
        primary key when its first column is an integer (index range reads), else the first rows. The first rows
        of a table ordered by a composite key repeat its leading values and spread the next ones: TPC-H
        partsupp's 10,000 first rows made ``ps_suppkey`` (10,000 values) look unique, 789,832."""
        projections = ", ".join(
            f"CAST({exp.column(f.name, quoted=True).sql(dialect='mysql')} AS CHAR) AS "
            f"{exp.column(f.name, quoted=True).sql(dialect='mysql')}"
            if (f.metadata or {}).get(READ_AS_TEXT) else exp.column(f.name, quoted=True).sql(dialect="mysql")
            for f in fields)
        name = exp.table_(table, db=schema, quoted=True).sql(dialect="mysql")
        sql = f"SELECT {projections} FROM {name} LIMIT {SAMPLE_ROWS}"
        key = self.primary_key(schema, table)  # a composite key is sliced over its first column
        if rows and rows > SAMPLE_ROWS and key and pa.types.is_integer(
                self.table_schema(schema, table).field(key[0]).type):
            column = exp.column(key[0], quoted=True).sql(dialect="mysql")
            bounds = self._bounded_read(f"SELECT MIN({column}) AS lo, MAX({column}) AS hi FROM {name}").to_pylist()[0]
            if bounds["lo"] is not None:
                # starts drawn at random (seeded by the table, so statistics are repeatable): evenly spaced ones
                # fell in step with TPC-H's key patterns (partsupp's suppliers repeat every 10,000 parts)
                draw = random.Random(f"{schema}.{table}")
                lo, hi = int(bounds["lo"]), int(bounds["hi"])
                starts = [lo, *sorted(draw.randint(lo, hi) for _ in range(SLICES - 2))]
                slices = [f"WHERE {column} >= {start} ORDER BY {column}" for start in starts] + [
                    f"ORDER BY {column} DESC"]  # the first slice starts at the bottom, the last ends at the top
                sql = " UNION ALL ".join(f"(SELECT {projections} FROM {name} {where} LIMIT {SAMPLE_ROWS // SLICES})"
                                         for where in slices)
        data = self._bounded_read(sql)
        if data.num_rows < SAMPLE_ROWS and "UNION ALL" not in sql:
            rows = data.num_rows  # the whole table
        return sample_column_statistics(typed_sample(data, pa.schema(fields)), rows)
