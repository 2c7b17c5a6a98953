"""Statistics of Parquet and CSV files: rows, null counts and min/max from Parquet footers, distinct and common
values from bounded samples (row groups spread over the files; CSV blocks spread over their bytes), and the
values of Hive partition folders (``connectors.files``)."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import csv

from connectors.base import ColumnStatistics
from connectors.statistics import SAMPLE_ROWS, largest, sample_column_statistics, smallest, value_from_text

#: a CSV table at most this large (bytes) is read whole for its statistics; a larger one in sampled blocks
CSV_WHOLE_BYTES = 4 * 1024 * 1024
#: blocks a larger CSV table is sampled in, spread evenly over its bytes (the first and the last included)
CSV_BLOCKS = 10


def parquet_statistics(files: list[Path], fields: list[pa.Field]) -> tuple[int, dict[str, ColumnStatistics]]:
    """(rows, column statistics) of Parquet files: rows, null counts and min/max from every row group's footer
    statistics (``parquet_footers``), distinct and common values from up to ``SAMPLE_ROWS`` rows read from at
    most ten row groups spread over the files."""
    parquets = [pq.ParquetFile(file) for file in files]
    rows, nulls, bounds = parquet_footers(parquets, [f.name for f in fields])
    sample, blocks = parquet_sample(parquets, fields)
    sampled = sample_column_statistics(sample, rows, f"parquet footer; distinct from a sample of {sample.num_rows} "
                                                     f"of {rows} rows", blocks)
    columns = {}
    for field in fields:
        name, seen = field.name, sampled.get(field.name, ColumnStatistics())
        lo, hi = bounds[name]
        distinct = seen.distinct
        if distinct is not None and isinstance(lo, int) and isinstance(hi, int) and not isinstance(lo, bool):
            distinct = min(distinct, float(hi - lo + 1))
        columns[name] = ColumnStatistics(
            distinct=distinct, null_fraction=(nulls[name] / rows) if rows and nulls[name] is not None else None,
            min=lo, max=hi, most_common=seen.most_common, origin=seen.origin or "parquet footer")
    return rows, columns


def parquet_footers(parquets: list, names: list[str]) -> tuple[int, dict[str, int | None], dict[str, tuple]]:
    """(rows, null count per column, (min, max) per column) combined over every row group's footer statistics;
    a count or bound that some row group lacks is None (a row group of only NULLs has no bounds to lack)."""
    rows = 0
    nulls: dict[str, int | None] = dict.fromkeys(names, 0)
    lows: dict[str, list | None] = {n: [] for n in names}
    highs: dict[str, list] = {n: [] for n in names}
    for parquet in parquets:
        meta = parquet.metadata
        rows += meta.num_rows
        positions = {meta.schema.column(i).path: i for i in range(meta.num_columns)}
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            for name in names:
                stats = group.column(positions[name]).statistics if name in positions else None
                has_nulls = stats is not None and stats.has_null_count
                nulls[name] = nulls[name] + stats.null_count if has_nulls and nulls[name] is not None else None
                if stats is not None and stats.has_min_max:
                    if lows[name] is not None:
                        lows[name].append(stats.min)
                        highs[name].append(stats.max)
                elif group.num_rows and not (has_nulls and stats.null_count == group.num_rows):
                    lows[name] = None
    bounds = {n: (smallest(lows[n]), largest(highs[n])) if lows[n] is not None else (None, None) for n in names}
    return rows, nulls, bounds


def parquet_sample(parquets: list, fields: list[pa.Field]) -> tuple[pa.Table, list[int]]:
    """At most ``SAMPLE_ROWS`` rows: the first rows of at most ten row groups spread over the files; and the rows
    taken from each row group (contiguous blocks, for ``clustered_distinct``)."""
    groups = [(parquet, g) for parquet in parquets for g in range(parquet.metadata.num_row_groups)
              if parquet.metadata.row_group(g).num_rows]
    if len(groups) > 10:
        groups = [groups[i] for i in sorted({round(i * (len(groups) - 1) / 9) for i in range(10)})]
    per_group = max(SAMPLE_ROWS // max(len(groups), 1), 1)
    batches = []
    for parquet, g in groups:
        batch = next(parquet.iter_batches(batch_size=per_group, row_groups=[g], columns=[f.name for f in fields]),
                     None)
        if batch is not None:
            batches.append(pa.Table.from_batches([batch]).cast(pa.schema(fields)))
    sample = pa.concat_tables(batches) if batches else pa.schema(fields).empty_table()
    return sample, [b.num_rows for b in batches]


def csv_statistics(files: list[Path], fields: list[pa.Field], header: bool, delimiter: str
                   ) -> tuple[int | None, dict[str, ColumnStatistics]]:
    """(rows, column statistics) of CSV files from a bounded sample: every row when the files hold at most
    ``CSV_WHOLE_BYTES``, else ``CSV_BLOCKS`` blocks of about ``SAMPLE_ROWS / CSV_BLOCKS`` rows at offsets
    spread over the files (each block starts after a line break; a block that does not parse is skipped). Rows
    are then estimated as the files' bytes over the sampled bytes per row."""
    sizes = [f.stat().st_size for f in files]
    total = sum(sizes)
    read = csv.ReadOptions(column_names=[f.name for f in fields], autogenerate_column_names=False)
    parse = csv.ParseOptions(delimiter=delimiter)
    convert = csv.ConvertOptions(column_types={f.name: f.type for f in fields}, strings_can_be_null=True)

    def parsed(data: bytes) -> pa.Table | None:
        try:
            return csv.read_csv(io.BytesIO(data), read_options=read, parse_options=parse, convert_options=convert)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None

    def without_header(data: bytes) -> bytes:
        return data.split(b"\n", 1)[1] if header and b"\n" in data else data

    if total <= CSV_WHOLE_BYTES:
        tables = [t for t in (parsed(without_header(f.read_bytes())) for f in files) if t is not None]
        sample = pa.concat_tables(tables) if tables else pa.schema(fields).empty_table()
        return sample.num_rows, sample_column_statistics(sample, sample.num_rows, f"all {sample.num_rows} rows")
    with open(files[0], "rb") as first:
        head = without_header(first.read(256 * 1024))
    line = max(len(head) / max(head.count(b"\n"), 1), 1.0)
    block = int(min(line * SAMPLE_ROWS / CSV_BLOCKS, total / CSV_BLOCKS, 1024 * 1024))
    tables, sampled_bytes = [], 0
    for i in range(CSV_BLOCKS):
        data = _csv_block(files, sizes, round(i * (total - block) / (CSV_BLOCKS - 1)), block, without_header)
        table = parsed(data) if data.strip() else None
        if table is not None and table.num_rows:
            tables.append(table)
            sampled_bytes += len(data)
    sample = pa.concat_tables(tables) if tables else pa.schema(fields).empty_table()
    rows = round(total * sample.num_rows / sampled_bytes) if sampled_bytes else None
    return rows, sample_column_statistics(sample, rows, f"sample {sample.num_rows} of ~{rows} rows",
                                          [t.num_rows for t in tables])




def _csv_block(files: list[Path], sizes: list[int], offset: int, block: int, without_header) -> bytes:
    """About ``block`` bytes at ``offset`` of the files' bytes taken end to end: from the first line break on (at
    a file's start, without its header), up to the last line break unless the block reaches the file's end."""
    index = 0
    while index < len(sizes) - 1 and offset >= sizes[index]:
        offset -= sizes[index]
        index += 1
    with open(files[index], "rb") as handle:
        handle.seek(max(offset, 0))
        data = handle.read(block)
    data = without_header(data) if offset <= 0 else (data.split(b"\n", 1)[1] if b"\n" in data else b"")
    return data[: data.rfind(b"\n") + 1] if offset + block < sizes[index] else data

def partition_column_statistics(files: list[Path], location: Path, fields: list[pa.Field]
                                ) -> dict[str, ColumnStatistics]:
    """Statistics of Hive partition columns (``fields``) from the ``key=value`` folders of ``files`` below
    ``location``."""
    columns = {}
    for f in fields:
        values = [value_from_text(part.split("=", 1)[1], f.type) for file in files
                  for part in file.relative_to(location).parts[:-1] if part.split("=", 1)[0] == f.name]
        distinct = {v for v in values if v is not None}
        columns[f.name] = ColumnStatistics(distinct=float(len(distinct)), null_fraction=0.0,
                                           min=smallest(distinct), max=largest(distinct),
                                           origin="partition folders")
    return columns
