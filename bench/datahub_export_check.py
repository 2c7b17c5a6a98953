"""Check ``gateway catalog export --format datahub`` with DataHub's own reader: the exported file is read
back by acryl-datahub's ``file`` ingestion source (what ``datahub ingest`` runs with ``source: {type: file}``),
every proposal parsed into DataHub's classes and validated.

acryl-datahub (~140 MB with its dependencies, and pinning its own pydantic) stays out of the project's
venv: install it in a venv of its own and name that venv's python::

    python3 -m venv /tmp/datahub && /tmp/datahub/bin/pip install acryl-datahub
    .venv/bin/python bench/datahub_export_check.py --datahub-python /tmp/datahub/bin/python [--config FILE]

Exports the catalog of ``--config`` (default: the demo with two named views, ``DEMO_VIEWS``: a join across
its sources with CASE and an aggregate, and a view over that view) to a temp file, then runs the check in
DataHub's python. Prints the number of proposals read per aspect; exits 1 when DataHub rejects any.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.execution.engine import QueryEngine
from gateway.settings import ViewConfig, load_settings, prepare
from gateway.trust.export import datahub_mcps

#: named views added to the demo's catalog (their lineage is exported as ``upstreamLineage``)
DEMO_VIEWS = [
    {"name": "bi.sales.by_region", "sql": "SELECT c.region, CASE WHEN sum(o.total) > 1000 THEN 'big' ELSE 'small' "
                                          "END AS size, sum(o.total) AS amount FROM demo_db.customers c "
                                          "JOIN demo_lake.orders o ON o.customer_id = c.id GROUP BY c.region"},
    {"name": "bi.sales.big_regions", "sql": "SELECT region, amount FROM bi.sales.by_region WHERE size = 'big'"},
]

CHECK = """
import collections, json, sys, pathlib
from datahub.ingestion.api.common import PipelineContext
from datahub.ingestion.source.file import GenericFileSource
source = GenericFileSource.create({"path": sys.argv[1]}, PipelineContext(run_id="gateway-export-check"))
aspects = collections.Counter()
for unit in source.get_workunits():
    mcp = unit.metadata
    assert mcp.validate(), mcp
    aspects[mcp.aspectName] += 1
report = source.get_report()
print(json.dumps({"aspects": aspects, "failures": [str(f) for f in report.failures]}))
sys.exit(1 if report.failures else 0)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datahub-python", required=True, help="python of a venv with acryl-datahub")
    parser.add_argument("--config", help="gateway config (default: the demo)")
    args = parser.parse_args()
    settings = prepare(load_settings(args.config))
    if args.config is None:
        settings = settings.model_copy(update={"views": [ViewConfig(**v) for v in DEMO_VIEWS]})
    engine = QueryEngine(settings)
    try:
        proposals = datahub_mcps(engine.catalog)
    finally:
        engine.close()
    path = Path(tempfile.mkdtemp(prefix="datahub-export-")) / "catalog.json"
    path.write_text(json.dumps(proposals, default=str))
    print(f"{len(proposals)} proposals written to {path}")
    done = subprocess.run([args.datahub_python, "-c", CHECK, str(path)], capture_output=True, text=True)
    print(done.stdout.strip() or done.stderr[-3000:])
    sys.exit(done.returncode)


if __name__ == "__main__":
    main()
