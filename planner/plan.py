"""The planner's output: fragments pushed to sources and the residual plan DataFusion runs over them."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from connectors.base import Fragment


@dataclass
class NotPushed:
    """One thing that stayed in DataFusion and why (shown by EXPLAIN)."""

    what: str
    reason: str


@dataclass
class FederatedPlan:
    """Fragments + residual SQL over them.

    Attributes:
        sql: the original SQL text.
        fragments: one per table occurrence (or a single fragment holding the whole query).
        residual_sql: DataFusion SQL over the fragments, each registered under its ``id``; None when the
            whole query was pushed to one source and DataFusion only passes its stream through.
        schema: the Arrow schema of the result.
        not_pushed: what stayed in DataFusion, with the reason.
        residual_plan: DataFusion's optimized logical plan of the residual, as text (for EXPLAIN).
    """

    sql: str
    fragments: list[Fragment]
    residual_sql: str | None
    schema: pa.Schema
    not_pushed: list[NotPushed] = field(default_factory=list)
    residual_plan: str = ""

    @property
    def pushed_whole(self) -> bool:
        return self.residual_sql is None

    @property
    def sources(self) -> list[str]:
        return sorted({f.source for f in self.fragments})

    def explain(self, fragment_stats: dict[str, dict] | None = None) -> str:
        """A text plan: each fragment with its pushed SQL, the residual plan, and what was not pushed.

        ``fragment_stats`` (from a run: ``{fragment_id: {"rows": n, "bytes": n}}``) adds what each
        fragment returned.
        """
        lines = ["Federated plan"]
        if self.pushed_whole:
            lines.append(f"  whole query pushed down to source '{self.fragments[0].source}'")
        for f in self.fragments:
            lines.append(f"  Fragment {f.id} -> source '{f.source}' reads {', '.join(f.tables)}")
            if f.pushed:
                lines.append(f"    pushed: {'; '.join(f.pushed)}")
            lines.append(f"    partitions: {', '.join(f.partitions)}")
            lines.append(f"    SQL: {f.sql}")
            if fragment_stats and f.id in fragment_stats:
                s = fragment_stats[f.id]
                lines.append(f"    returned: {s.get('rows')} rows, {s.get('bytes')} bytes")
        if self.residual_sql is not None:
            lines.append("  Residual plan (DataFusion):")
            lines.append(f"    SQL: {self.residual_sql}")
            for plan_line in self.residual_plan.splitlines():
                lines.append(f"      {plan_line}")
        if self.not_pushed:
            lines.append("  Not pushed down:")
            for item in self.not_pushed:
                lines.append(f"    - {item.what}: {item.reason}")
        lines.append(f"  Output: {', '.join(f'{fld.name} {fld.type}' for fld in self.schema)}")
        return "\n".join(lines)
