"""Helpers shared by the benchmarks: statistics, result comparison, DuckDB extensions from wheels, the README
table between markers, and a free loopback port."""

from __future__ import annotations

import decimal
import glob
import math
import os
import platform
import socket
import statistics
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def median(values: list[float]) -> float:
    return statistics.median(values)


def geomean(values: list[float]) -> float | None:
    """Geometric mean of positive numbers; None for an empty list."""
    values = [v for v in values if v is not None and v > 0]
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def duckdb_extension_path(module: str, extension: str) -> str:
    """The ``.duckdb_extension`` file shipped in a ``duckdb-extension-*`` wheel (loaded by path: no download)."""
    package = __import__(module)
    pattern = os.path.join(os.path.dirname(package.__file__), "extensions", "*", f"{extension}.duckdb_extension")
    found = glob.glob(pattern)
    if not found:
        raise RuntimeError(f"{extension}.duckdb_extension not found in {module}; pip install the wheel of the "
                           "same version as duckdb")
    return found[0]


# -- comparing results -----------------------------------------------------------------------------------

def _number(value) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, decimal.Decimal)):
        return float(value)
    return None


def _row_key(row: tuple) -> tuple:
    key = []
    for v in row:
        n = _number(v)
        key.append((v is None, round(n, 2) if n is not None else 0.0, "" if n is not None else str(v)))
    return tuple(key)


def same_rows(got, want, rel_tol: float = 1e-6) -> str | None:
    """None when the two Arrow tables hold the same rows (any order; numbers compared as floats within
    ``rel_tol``, so decimal and double results agree); else a short description of the first difference."""
    if got.num_columns != want.num_columns:
        return f"{got.num_columns} columns, want {want.num_columns}"
    if got.num_rows != want.num_rows:
        return f"{got.num_rows} rows, want {want.num_rows}"
    got_rows = sorted((tuple(r.values()) for r in got.to_pylist()), key=_row_key)
    want_rows = sorted((tuple(r.values()) for r in want.to_pylist()), key=_row_key)
    for g, w in zip(got_rows, want_rows, strict=True):
        for a, b in zip(g, w, strict=True):
            na, nb = _number(a), _number(b)
            if na is not None and nb is not None:
                if not math.isclose(na, nb, rel_tol=rel_tol, abs_tol=1e-6):
                    return f"row {g} differs from {w}"
            elif str(a) != str(b):
                return f"row {g} differs from {w}"
    return None


# -- environment -----------------------------------------------------------------------------------------

def machine() -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()}
    try:
        with open("/proc/meminfo") as f:
            total_kb = int(f.readline().split()[1])
        info["memory_gib"] = round(total_kb / 1024 / 1024, 1)
    except OSError:
        pass
    from importlib.metadata import PackageNotFoundError, version

    packages = {}
    for name in ("duckdb", "datafusion", "pyarrow", "sqlglot", "adbc-driver-flightsql", "adbc-driver-postgresql",
                 "connectorx", "duckdb-extension-postgres-scanner", "duckdb-extension-mysql-scanner"):
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = None
    info["packages"] = packages
    return info


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.strip()
        # the results this run is about to rewrite do not make the measured code dirty
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no", "--",
                                ".", ":!bench/results"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return out + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def write_results(path: str | Path, result: dict) -> None:
    """Write a benchmark's result as JSON (with the machine and commit measured) and print it."""
    import json

    result = {**result, "machine": machine(), "git_commit": git_commit()}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps(result, indent=2, default=str))


# -- README ----------------------------------------------------------------------------------------------

def write_readme_section(readme: Path, key: str, body: str, heading: str, intro: str = "") -> None:
    """Put ``body`` between ``<!-- bench:KEY:start -->`` and ``<!-- bench:KEY:end -->`` in ``readme``; when
    the markers are absent they are appended at the end (after ``heading`` and ``intro`` when the README has no
    such heading line)."""
    start, end = f"<!-- bench:{key}:start -->", f"<!-- bench:{key}:end -->"
    text = readme.read_text()
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        text = before + block + after
    else:
        has_heading = heading in text.splitlines()
        addition = "" if has_heading else f"\n{heading}\n\n{intro.rstrip()}\n" if intro else f"\n{heading}\n"
        text = text.rstrip("\n") + "\n" + addition + "\n" + block + "\n"
    readme.write_text(text)
