"""The layers of ../shared/DESIGN.md hold: every import of every module runs down the floors, never up.

Floors (docs/architecture.md draws them): 1 ``connectors`` (SPI, errors, Arrow and DataFusion plumbing),
2 ``catalog``, 3 ``planner``, 4 execution and cache (``gateway.execution``, ``gateway.cache``) with the
configuration and observability they run under (``gateway.settings``, ``gateway.metrics``, ``gateway.logs``),
5 entry points (REST, auth, client, ``flight_server``), 6 the composition root (``gateway.server``) and the CLI
that starts it. Function-local imports count: a lazy import up the floors is still an arrow up.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("connectors", "catalog", "planner", "gateway", "flight_server")

# longest prefix wins; a module under no prefix of its package is an entry point (floor 5)
FLOORS = {
    "connectors": 1,
    "catalog": 2,
    "planner": 3,
    "gateway.execution": 4,
    "gateway.cache": 4,
    "gateway.distributed": 4,  # Ray execution, beside gateway.execution (which schedules it)
    "gateway.settings": 4,
    "gateway.metrics": 4,
    "gateway.logs": 4,
    "gateway.demo": 4,
    "gateway.trust": 4,  # manifests and lineage, recorded by the engine as queries start and end
    "gateway.errors": 1,  # a re-export of connectors.errors for clients
    "gateway": 5,
    "flight_server": 5,
    "gateway.server": 6,
    "gateway.cli": 6,
}
ROOTS = ("gateway.server", "gateway.cli")


def floor(module: str) -> int:
    """The floor of a dotted module name (its longest listed prefix)."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in FLOORS:
            return FLOORS[prefix]
    raise KeyError(module)


def modules() -> dict[str, Path]:
    """Every module of the five packages, by dotted name."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports(name: str, path: Path) -> set[str]:
    """The project modules ``name`` imports, at module level or inside functions (relative imports resolved)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # `from gateway import engine`
    return {m for m in found if m.split(".")[0] in PACKAGES}


def _resolve(imported: str, known: dict[str, Path]) -> str | None:
    """The module an import names (``from gateway.errors import X`` lists ``gateway.errors.X``: not a module)."""
    while imported and imported not in known:
        imported = imported.rpartition(".")[0]
    return imported or None


ALL = modules()


def test_every_module_has_a_floor():
    """Each module of the five packages maps to a floor (a new top-level package must be placed here)."""
    assert all(floor(name) for name in ALL)


@pytest.mark.parametrize("name", sorted(ALL))
def test_imports_run_down_the_floors(name):
    """``name`` imports no module on a higher floor than its own."""
    mine = floor(name)
    upward = sorted({target for target in (_resolve(i, ALL) for i in imports(name, ALL[name]))
                     if target and floor(target) > mine})
    assert not upward, f"{name} (floor {mine}) imports higher floors: " + ", ".join(
        f"{t} (floor {floor(t)})" for t in upward)


def test_only_the_composition_root_imports_both_servers():
    """Only ``gateway.server`` (and the CLI that starts it) import the Flight SQL server and the REST app."""
    both = []
    for name, path in ALL.items():
        targets = {_resolve(i, ALL) for i in imports(name, path)}
        flight = any(t and t.startswith("flight_server") for t in targets)
        rest = any(t and (t.startswith("gateway.rest") or t.startswith("gateway.api")) for t in targets)
        if flight and rest and name not in ROOTS:
            both.append(name)
    assert not both, both


def test_lower_floors_never_import_gateway_or_flight_server():
    """connectors/, catalog/ and planner/ import nothing from gateway/ or flight_server/ (not even lazily)."""
    offending = {name: sorted(t for t in imports(name, path) if t.split(".")[0] in ("gateway", "flight_server"))
                 for name, path in ALL.items() if floor(name) <= 3}
    assert not {k: v for k, v in offending.items() if v}, offending
