"""Realistic mock data from catalog statistics: Parquet tables shaped like the real ones, for tests and demos
that must not touch production rows (``gateway mock``).

``mock_tables(catalog, refs, rows, out_dir, seed, sensitive)`` writes ``<out_dir>/<table>.parquet`` for each
table, with the table's columns and Arrow types, from what ``Catalog.statistics`` knows of each column (the
source's own statistics, e.g. ``pg_stats``, or a sample):

- each column's **null fraction**; its **most common values** with their frequencies; the rest drawn
  uniformly from a pool of (distinct count - common values) values spread over **[min, max]** (numbers, dates,
  timestamps) or synthetic strings ``<column>_<k>`` of the common values' mean length;
- the **primary key** unique (its first column numbered from ``min``); a **foreign key** whose referenced
  table is mocked in the same call drawn from that table's generated keys (tables are written parents first),
  so joins resolve;
- a **sensitive** column (named in ``sensitive`` or ``[[sources]] sensitive_columns`` as ``column`` or
  ``table.column``, or whose name looks like a person's data: email, phone, name, address, birth, ssn, iban,
  card, ip, password...) never gets a real value: neither its common values nor its min/max are used; its
  values are synthetic (``user<k>@example.invalid``, ``+1-555-01<k>``, ``Person <k>``, ``<column>-<k>``).

How close it gets (``tests/trust/test_mock.py`` over a real PostgreSQL table of 2,000 rows mocked to 5,000):
null fraction and each common value's frequency within 0.05 of the source's, every non-null value within
[min, max], distinct count within a factor of 2 where the source's is below the row count. Not modelled:
correlations between columns, histogram shapes beyond min/max (values are uniform between them), string
character classes.
"""

from __future__ import annotations

import datetime as dt
import decimal
import random
import re
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from catalog import Catalog, TableRef
from connectors.base import ColumnStatistics
from gateway.errors import InvalidRequestError

#: column names that look like a person's data (matched on word parts of the name)
PERSONAL = re.compile(r"(^|_)(e?mail|email|phone|mobile|fax|name|firstname|lastname|surname|address|street|city|"
                      r"zip|postcode|postal|birth|dob|ssn|passport|iban|card|ip|password|token)($|_)", re.I)


def is_sensitive(table: str, column: str, configured: Iterable[str] = ()) -> bool:
    """Whether ``column`` of ``table`` must never get a real value (configured, or a personal-looking name)."""
    names = {c.lower() for c in configured}
    return column.lower() in names or f"{table}.{column}".lower() in names or bool(PERSONAL.search(column))


def mock_tables(catalog: Catalog, refs: Sequence[TableRef], rows: int, out_dir: str | Path, seed: int = 0,
                sensitive: Iterable[str] = ()) -> dict[TableRef, Path]:
    """Write a mock of each table in ``refs`` (``rows`` rows each) to ``out_dir/<table>.parquet``; returns the
    files. The same ``seed`` gives the same files. Raises InvalidRequestError for ``rows`` < 1 or two tables
    of one name, and what the catalog raises (UnknownObjectError, SourceUnavailableError)."""
    if rows < 1:
        raise InvalidRequestError("--rows must be at least 1")
    if len({r.table for r in refs}) != len(refs):
        raise InvalidRequestError("two tables to mock have the same name; mock them into different folders")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    generated: dict[tuple[TableRef, str], list] = {}
    files = {}
    for ref in _parents_first(catalog, refs):
        rng = random.Random(zlib.crc32(f"{seed}:{ref}".encode()))
        table = _mock_table(catalog, ref, rows, rng, generated, sensitive)
        files[ref] = out / f"{ref.table}.parquet"
        pq.write_table(table, files[ref])
    return files


def _parents_first(catalog: Catalog, refs: Sequence[TableRef]) -> list[TableRef]:
    """``refs`` ordered so that a table referenced by a foreign key comes before the tables referencing it."""
    wanted = set(refs)
    done: list[TableRef] = []

    def visit(ref: TableRef, path: set[TableRef]) -> None:
        if ref in done or ref in path:
            return
        for fk in catalog.foreign_keys(ref):
            parent = TableRef(ref.source, fk.ref_schema, fk.ref_table)
            if parent in wanted:
                visit(parent, path | {ref})
        done.append(ref)

    for ref in refs:
        visit(ref, set())
    return done


def _mock_table(catalog: Catalog, ref: TableRef, rows: int, rng: random.Random,
                generated: dict[tuple[TableRef, str], list], sensitive: Iterable[str]) -> pa.Table:
    schema = catalog.table_schema(ref)
    stats = catalog.statistics(ref).columns
    connector = catalog.connector(ref.source)
    key = connector.primary_key(ref.schema, ref.table)
    configured = list(sensitive) + list(connector.options.get("sensitive_columns") or [])
    parents = {}
    for fk in catalog.foreign_keys(ref):
        for column, parent_column in zip(fk.columns, fk.ref_columns, strict=True):
            parents[column] = (TableRef(ref.source, fk.ref_schema, fk.ref_table), parent_column)
    columns = []
    for f in schema:
        parent = parents.get(f.name)
        if key and f.name == key[0]:
            values = _unique(f.type, stats.get(f.name), rows)
        elif parent is not None and parent in generated:
            pool = [v for v in generated[parent] if v is not None]
            values = [rng.choice(pool) if pool else None for _ in range(rows)]
        else:
            secret = is_sensitive(ref.table, f.name, configured)
            values = _column(f, stats.get(f.name) or ColumnStatistics(), rows, rng, secret)
        generated[(ref, f.name)] = values
        columns.append(pa.array(values, type=f.type))
    return pa.Table.from_arrays(columns, schema=pa.schema([f.remove_metadata() for f in schema]))


def _unique(kind: pa.DataType, stats: ColumnStatistics | None, rows: int) -> list:
    """``rows`` distinct values: integers from the column's min (else 1), else ``key-<n>`` strings."""
    if pa.types.is_integer(kind):
        start = stats.min if stats is not None and isinstance(stats.min, int) else 1
        return list(range(start, start + rows))
    return [f"key-{i}" for i in range(1, rows + 1)]


def _column(f: pa.Field, stats: ColumnStatistics, rows: int, rng: random.Random, secret: bool) -> list:
    """One column's values (see the module docstring): nulls, common values, then the pool."""
    null_fraction = (stats.null_fraction or 0.0) if f.nullable else 0.0
    common = () if secret else tuple((v, w) for v, w in stats.most_common if v is not None)
    common_share = min(1.0, sum(w for _, w in common) / max(1e-9, 1.0 - null_fraction))
    distinct = int(stats.distinct) if stats.distinct else rows
    pool = _pool(f, stats, max(1, min(rows, distinct - len(common))), rng, secret)
    values, weights = [v for v, _ in common], [w for _, w in common]
    out = []
    for _ in range(rows):
        if rng.random() < null_fraction:
            out.append(None)
        elif common and rng.random() < common_share:
            out.append(rng.choices(values, weights)[0])
        else:
            out.append(rng.choice(pool) if pool else None)
    return out


def _pool(f: pa.Field, stats: ColumnStatistics, size: int, rng: random.Random, secret: bool) -> list:
    """``size`` values of the column's type between its min and max (synthetic ones for a sensitive column)."""
    kind = f.type
    low, high = (None, None) if secret else (stats.min, stats.max)
    if pa.types.is_boolean(kind):
        return [True, False]
    if pa.types.is_integer(kind):
        low, high = (low, high) if isinstance(low, int) and isinstance(high, int) else (1, max(size, 1))
        return [rng.randint(low, high) for _ in range(size)]
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        lo, hi = (float(low), float(high)) if low is not None and high is not None else (0.0, 1000.0)
        numbers = [rng.uniform(lo, hi) for _ in range(size)]
        if pa.types.is_decimal(kind):
            step = decimal.Decimal(1).scaleb(-kind.scale)
            return [decimal.Decimal(x).quantize(step, rounding=decimal.ROUND_DOWN) for x in numbers]
        return numbers
    if pa.types.is_date(kind) or pa.types.is_timestamp(kind):
        return _instants(kind, low, high, size, rng)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _strings(f.name, stats, size, secret)
    return []  # other types (binary, nested): nulls only


def _instants(kind: pa.DataType, low, high, size: int, rng: random.Random) -> list:
    if pa.types.is_date(kind):
        lo = low if isinstance(low, dt.date) else dt.date(2020, 1, 1)
        hi = high if isinstance(high, dt.date) else lo + dt.timedelta(days=365)
        return [lo + dt.timedelta(days=rng.randint(0, max(0, (hi - lo).days))) for _ in range(size)]
    lo = low if isinstance(low, dt.datetime) else dt.datetime(2020, 1, 1)
    hi = high if isinstance(high, dt.datetime) else lo + dt.timedelta(days=365)
    span = max(0, int((hi - lo).total_seconds()))
    return [lo + dt.timedelta(seconds=rng.randint(0, span)) for _ in range(size)]


def _strings(name: str, stats: ColumnStatistics, size: int, secret: bool) -> list[str]:
    lowered = name.lower()
    if secret:
        if "mail" in lowered:
            return [f"user{k}@example.invalid" for k in range(1, size + 1)]
        if "phone" in lowered or "mobile" in lowered or "fax" in lowered:
            return [f"+1-555-01{k:04d}" for k in range(1, size + 1)]
        if "name" in lowered:
            return [f"Person {k}" for k in range(1, size + 1)]
        return [f"{name}-{k}" for k in range(1, size + 1)]
    lengths = [len(str(v)) for v, _ in stats.most_common] or [len(name) + 4]
    width = max(len(name) + 2, round(sum(lengths) / len(lengths)))
    return [f"{name}_{k}".ljust(width, "x")[:max(width, len(f'{name}_{k}'))] for k in range(1, size + 1)]
