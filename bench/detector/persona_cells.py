"""Would the drop-off spike rule still fire if its cells were cut by persona? Counts, in a simulated
population, the (journey, stage, channel) cell-minutes and the (journey, stage, channel, persona) ones that
reach the rule's minimum volume (``dropoff_min_volume``, 20 by default), and how the injected incident's
events spread over personas (docs/journey-map.md, "Personas and the drop-off spike rule").

    .venv/bin/python -m bench.detector.persona_cells --customers 100000 --days 1
"""

from __future__ import annotations

import argparse
from collections import Counter

from services.common.timeutil import parse_rfc3339_ms
from services.gap_detector.core.definitions import load_definitions
from services.simulator.generator import SimConfig, generate

MINUTE_MS = 60_000
Cell = tuple[str, str, str, int]


def count(customers: int, days: float, seed: int) -> dict[str, object]:
    defs = load_definitions()
    pop = generate(SimConfig(customers=customers, seed=seed, span_ms=int(days * 86_400_000)), defs)
    cells: Counter[Cell] = Counter()
    persona_cells: Counter[tuple[Cell, str]] = Counter()
    for customer, events in pop.events.items():
        persona = pop.personas[customer]
        for ev in {e["event_id"]: e for e in events}.values():  # deduplicated, as the rule counts
            journey = ev.get("journey") or {}
            if journey.get("type") and journey.get("stage"):
                minute = parse_rfc3339_ms(ev["occurred_at"]) // MINUTE_MS * MINUTE_MS
                cell = (journey["type"], journey["stage"], ev["channel"], minute)
                cells[cell] += 1
                persona_cells[(cell, persona)] += 1
    least = {c: defs.thresholds(c[0]).dropoff_min_volume for c in cells}
    incident = pop.incidents[0] if pop.incidents else None
    spread: dict[str, int] = {}
    if incident is not None:
        key = (
            incident["journey"],
            incident["stage"],
            incident["channel"],
            incident["start_ms"] // MINUTE_MS * MINUTE_MS,
        )
        spread = {p: n for (c, p), n in persona_cells.most_common() if c == key}
    return {
        "customers": customers,
        "days": days,
        "cell_minutes": len(cells),
        "cell_minutes_at_min_volume": sum(n >= least[c] for c, n in cells.items()),
        "persona_cell_minutes": len(persona_cells),
        "persona_cell_minutes_at_min_volume": sum(n >= least[c] for (c, _), n in persona_cells.items()),
        "largest_persona_cell_minute": max(persona_cells.values(), default=0),
        "incident_events_by_persona": spread,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--days", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    for name, value in count(args.customers, args.days, args.seed).items():
        print(f"{name}: {value}")


if __name__ == "__main__":
    main()
