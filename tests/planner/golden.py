"""Golden files of the federation passes, in the manner of sqlglot's ``tests/fixtures/optimizer``: one file per
pass under ``golden/``, one case per paragraph:

    # title: what the case shows
    SELECT ... FROM pg.public.customers AS c ...;          <- the query, one line
    fragment __fragment_0 pg: SELECT ...;                  <- each fragment: id, source, SQL in its dialect
    residual: SELECT ...;                                  <- DataFusion's SQL over the fragments (or none)
    join order: n, c, s (written c, s, n): ...            <- a FROM list reordered by estimated rows
    not pushed: filter ... on pg.public.customers: <reason>
    join: __fragment_1.customer_id = __fragment_0.id either way
    dynamic filter: __fragment_0.id -> __fragment_1.customer_id

``python -m tests.planner.golden`` rewrites the expected lines from the current planner (review the diff).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from planner import FederatedPlan
from planner.dynamic_filters import choose
from tests.planner.catalog import planner

GOLDEN = Path(__file__).parent / "golden"


@dataclass
class Case:
    """One paragraph of a golden file."""

    path: Path
    title: str
    sql: str
    expected: list[str]

    @property
    def id(self) -> str:
        return f"{self.path.stem}: {self.title}"


def cases(folder: Path = GOLDEN) -> list[Case]:
    """Every case of every golden file, in file order."""
    found = []
    for path in sorted(folder.glob("*.sql")):
        for paragraph in path.read_text().split("\n\n"):
            lines = [line for line in paragraph.strip().splitlines() if line.strip()]
            titles = [line[len("# title:"):].strip() for line in lines if line.startswith("# title:")]
            body = [line for line in lines if not line.startswith("#")]
            if body:
                found.append(Case(path, titles[0] if titles else body[0][:60], body[0].rstrip(";"), body[1:]))
    return found


def render(plan: FederatedPlan, catalog) -> list[str]:
    """The lines a golden file holds for ``plan``."""
    lines = [f"fragment {f.id} {f.source}: {f.sql};" for f in plan.fragments]
    lines.append(f"residual: {plan.residual_sql};" if plan.residual_sql is not None else "residual: none")
    lines += [f"join order: {order}" for order in plan.join_orders]
    lines += [f"not pushed: {n.what}: {n.reason}" for n in plan.not_pushed]
    if plan.fallback:
        lines.append(f"fallback: {plan.fallback}")
    for j in plan.joins:
        way = "either way" if j.either_way else "directed"
        uses = f" (uses {j.left_use}, {j.right_use})" if j.left_use or j.right_use else ""
        lines.append(f"join: {j.left}.{j.left_column} = {j.right}.{j.right_column} {way}{uses}")
    for fid, local in plan.local_filters.items():
        lines.append(f"local filter: {fid} {local.alias}: {local.condition.sql()}")
    for d in choose(plan, catalog):
        lines.append(f"dynamic filter: {d.build}.{d.build_column} -> {d.probe}.{d.probe_column}")
    return lines


def update(folder: Path = GOLDEN) -> None:
    """Rewrite each case's expected lines from the current planner."""
    planning = planner()
    for path in sorted(folder.glob("*.sql")):
        paragraphs = []
        for case in [c for c in cases(folder) if c.path == path]:
            _, plan = planning.plan(case.sql)
            paragraphs.append("\n".join([f"# title: {case.title}", f"{case.sql};",
                                         *render(plan, planning.catalog)]))
        path.write_text("\n\n".join(paragraphs) + "\n")


if __name__ == "__main__":
    update(Path(sys.argv[1]) if len(sys.argv) > 1 else GOLDEN)
