"""REST result formats at scale: time to first byte, total time, body size and the server's memory growth for
each format of ``POST /v1/query`` over a large federated result (demo orders x customers x N: 1M rows x N).

The server runs in its own process (uvicorn over the demo config, generated under a temp folder); the client
streams each body and discards it, so the memory figure is the server's alone (its resident set sampled every
20 ms, minus its size before the query).

    .venv/bin/python bench/rest_formats_bench.py --copies 5          # 5M rows in every format
    .venv/bin/python bench/rest_formats_bench.py --formats csv,parquet --json-out bench/results/rest_formats.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import free_port

SERVER = """
import sys, uvicorn
from gateway.api import create_app
from gateway.execution.engine import QueryEngine
from gateway.settings import load_settings
from tests.demo_support import write_demo_config
from pathlib import Path
config = write_demo_config(Path(sys.argv[1]))
app = create_app(QueryEngine(load_settings(config)))
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def measure(url: str, pid: int, sql: str, fmt: str) -> dict:
    """One streamed download in ``fmt``: seconds to the first byte and to the end, bytes, peak RSS growth."""
    baseline = rss_bytes(pid)
    peak = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], rss_bytes(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    first = None
    size = 0
    with httpx.stream("POST", f"{url}/v1/query", json={"sql": sql, "format": fmt}, timeout=600) as response:
        response.raise_for_status()
        for chunk in response.iter_raw():
            if first is None:
                first = time.perf_counter() - t0
            size += len(chunk)
    total = time.perf_counter() - t0
    done.set()
    sampler.join()
    return {"format": fmt, "first_byte_s": round(first or total, 3), "total_s": round(total, 2),
            "megabytes": round(size / 1e6, 1), "server_rss_growth_mb": round((peak[0] - baseline) / 1e6, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=5, help="the result has 1M rows times this")
    parser.add_argument("--formats", default="json,ndjson,csv,arrow,parquet")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    copies = ", ".join(f"({i})" for i in range(args.copies))
    sql = ("SELECT o.order_id, o.order_date, o.total, c.name, v.k FROM demo_lake.orders o "
           f"CROSS JOIN demo_db.customers c CROSS JOIN (VALUES {copies}) AS v(k)")
    port = free_port()
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as folder:
        server = subprocess.Popen([sys.executable, "-c", SERVER, folder, str(port)], cwd=root)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            httpx.post(f"{url}/v1/query", json={"sql": "SELECT count(*) FROM demo_lake.orders"}, timeout=60)
            results = []
            for fmt in args.formats.split(","):
                result = measure(url, server.pid, sql, fmt)
                result["rows"] = 1_000_000 * args.copies
                print(json.dumps(result))
                results.append(result)
        finally:
            server.terminate()
            server.wait(30)
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
