"""No function of the gateway's packages is more complex than a reader can hold: radon's cyclomatic
complexity at most ``LIMIT`` (the architecture issue's bar; tests and benchmarks are not counted)."""

from __future__ import annotations

from pathlib import Path

from radon.complexity import cc_visit

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("connectors", "catalog", "planner", "gateway", "flight_server")
LIMIT = 25


def test_no_function_above_the_complexity_limit():
    """radon reports no function or method above complexity 25 in connectors/, catalog/, planner/, gateway/,
    flight_server/."""
    over = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for block in cc_visit(path.read_text()):
                for item in [block, *getattr(block, "methods", [])]:
                    if item.complexity > LIMIT and getattr(item, "letter", "F") != "C":
                        over.append(f"{path.relative_to(ROOT)}:{item.lineno} {item.name} ({item.complexity})")
    assert not over, "functions above complexity 25:\n" + "\n".join(sorted(set(over)))
