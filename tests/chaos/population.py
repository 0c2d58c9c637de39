"""The simulated population of a chaos run and its ground truth for the default, wall-clock detector.

The simulator's truth expects a stall only when its deadline is at or before the final event-time watermark
(docs/simulator.md), which is what the replay (`event`) clock reaches. The default clock is the wall clock:
the watermark is at least now minus the lateness. So the population ends longer ago than the longest SLA
(plus the lateness): every deadline is then in the wall-clock past during the whole run, and the truth for
the live clock is the oracle's with the final watermark at "now" — a customer whose journey really
stalled must get its stall, and nothing else may fire.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.common.timeutil import now_ms
from services.gap_detector.core.definitions import Definitions, load_definitions
from services.simulator import truth as truth_mod
from services.simulator.generator import Population, SimConfig, generate

DAY_MS = 86_400_000
HOUR_MS = 3_600_000


@dataclass
class Simulated:
    cfg: SimConfig
    population: Population
    truth: dict[str, Any]  # the simulator's truth, alerts re-derived for the live clock
    truth_event_clock_alerts: int  # what the replay clock would expect, for the report

    @property
    def bad_inputs(self) -> int:
        return sum(1 for r in self.population.records if r.raw is not None)


def longest_sla_ms(defs: Definitions) -> int:
    slas = [st.sla_ms for jt in defs.journeys.values() for st in jt.stages]
    slas += [jt.thresholds.default_stall_sla_ms for jt in defs.journeys.values()]
    return max([*slas, defs.defaults.default_stall_sla_ms])


def simulate(customers: int, seed: int, span_ms: int = 3 * DAY_MS) -> Simulated:
    defs = load_definitions()
    end = now_ms() - longest_sla_ms(defs) - 6 * HOUR_MS  # every deadline already past by the wall clock
    start = (end - span_ms) // 60_000 * 60_000
    cfg = SimConfig(customers=customers, seed=seed, start_ms=start, span_ms=span_ms, namespace=f"chaos{seed}")
    pop = generate(cfg, defs)
    truth = truth_mod.build_truth(pop, cfg, defs)
    event_clock_alerts = len(truth["alerts"])
    truth["alerts"] = live_clock_alerts(pop, defs, cfg.lateness_ms, now_ms())
    return Simulated(cfg, pop, truth, event_clock_alerts)


def live_clock_alerts(
    pop: Population, defs: Definitions, lateness_ms: int, wall_ms: int
) -> list[dict[str, Any]]:
    """The oracle's per-customer alerts with the watermark the wall clock gives (now minus the lateness).
    Not the detector's own watermark (`journeys evaluate --population` reads it from Redis): a watermark
    stuck behind would then expect fewer stalls and hide the fault; after a drain it must be here."""
    alerts, _, _ = truth_mod.expected_alerts(pop.events, defs, lateness_ms, wall_ms - lateness_ms)
    alerts.sort(key=lambda a: (a.type, a.occurred_at_ms, a.trigger))
    return [truth_mod.alert_json(a) for a in alerts]
