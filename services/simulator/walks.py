"""Walking a customer through journeys from the definitions, stage by stage."""

from __future__ import annotations

from services.gap_detector.core.definitions import JourneyType
from services.simulator.personas import DEFAULT_DEPARTMENTS, DEPARTMENTS, INTENTS
from services.simulator.scenarios import DAY, HOUR, MIN, CustomerSim, Pin

OFFSTAGE_HINTS = ("credit", "verif", "diagnos", "fix")


def walk_journey(sim: CustomerSim, jt: JourneyType, t: int, pin: Pin | None = None) -> int:
    """One journey: each stage tried on a self-service channel first; failures may become assisted
    contacts (channel switch), transfers (hand-offs) and repeat calls; some stages have an offstage
    step or an outbound nudge; the customer may go quiet past the SLA (stall), convert or drop out."""
    rng, p = sim.rng, sim.persona
    intent = INTENTS.get(jt.name, f"{jt.name}_help")
    depts = DEPARTMENTS.get(jt.name, DEFAULT_DEPARTMENTS)
    th = jt.thresholds
    stages = jt.stages[pin.stage_index :] if pin else jt.stages
    if pin:
        # The earlier stages happened quickly just before the incident minute.
        t = sim.touch(
            pin.t - rng.randrange(5 * MIN, 20 * MIN),
            sim.self_service(),
            jt.stages[0].name,
            journey=jt.name,
            stage=jt.stages[0].name,
            intent=intent,
            outcome="success",
        )
    for i, stage in enumerate(stages):
        if pin and i == 0:
            t = sim.touch(
                max(t, pin.t),
                pin.channel,
                stage.name,
                journey=jt.name,
                stage=stage.name,
                intent=intent,
                outcome=pin.outcome,
            )
            if pin.outcome == "abandoned":
                if rng.random() < p.escalate:
                    sim.assisted_contact(
                        t + sim.gap_within(th.channel_switch_window_ms),
                        jt,
                        stage.name,
                        intent,
                        depts,
                        resolved=False,
                    )
                return sim.last_t
            ok = pin.outcome == "success"
        else:
            ok = rng.random() >= p.fail_rate
            t = sim.touch(
                t,
                sim.self_service(),
                stage.name,
                journey=jt.name,
                stage=stage.name,
                intent=intent,
                outcome="success" if ok else "failure",
                sentiment=None if ok else sim.mood(),
            )
        if not ok:
            if rng.random() < p.escalate:
                t = sim.assisted_contact(
                    t + sim.gap_within(th.channel_switch_window_ms),
                    jt,
                    stage.name,
                    intent,
                    depts,
                    resolved=rng.random() < 0.6,
                )
                if rng.random() < p.repeat:
                    t = sim.repeat_contacts(t, jt, stage.name, intent, depts)
            else:
                # Try again later on another self-service channel (or give up on this stage).
                t = sim.touch(
                    t + rng.randrange(10 * MIN, 6 * HOUR),
                    sim.self_service(),
                    stage.name,
                    journey=jt.name,
                    stage=stage.name,
                    intent=intent,
                    outcome="success",
                )
        if any(h in stage.name for h in OFFSTAGE_HINTS) or rng.random() < 0.1:
            t = sim.emit(
                t + rng.randrange(MIN, 2 * HOUR),
                "other",
                stage.name.replace("_", "-") + "-backoffice",
                direction="outbound",
                visibility="offstage",
                department=depts[1 % len(depts)],
                journey=jt.name,
                stage=stage.name,
            )
        if rng.random() < 0.25:
            t = sim.outbound(t + rng.randrange(MIN, 3 * HOUR), jt.name, stage.name, f"{stage.name}_reminder")
        if rng.random() < p.stall:
            t += int(stage.sla_ms * rng.uniform(1.05, 2.0))
            if rng.random() < 0.5:
                return sim.last_t  # gone quiet for good: an open stall
        else:
            t += max(MIN, int(stage.sla_ms * rng.uniform(0.02, 0.6)))
        if sim.last_t > sim.end_ms:
            return sim.last_t
    if rng.random() < p.convert:
        terminal = sorted(jt.terminal)[0]
        t = sim.touch(
            t,
            sim.self_service(),
            terminal,
            journey=jt.name,
            stage=terminal,
            intent=intent,
            outcome="success",
            sentiment=sim.mood(),
        )
        if rng.random() < 0.6:
            t = sim.survey(t + rng.randrange(HOUR, DAY), jt.name)
    return sim.last_t


def live(sim: CustomerSim, start: int, span_ms: int, pins: list[tuple[JourneyType, Pin]]) -> None:
    """A customer's whole simulated life: arrive anonymously, sign up, then journeys and loose contacts."""
    rng = sim.rng
    t = start
    journeys = [j for j in sim.defs.journeys.values()]
    if pins:
        jt, pin = pins[0]
        sim.registered = True
        t = walk_journey(sim, jt, pin.t - 25 * MIN, pin)
        return
    if rng.random() < 0.8:  # anonymous browsing first: a cookie or an app install, nothing else
        ch = "mobile_app" if sim.self_service() == "mobile_app" else "web"
        t = sim.touch(t, ch, "browse") + rng.randrange(MIN, 20 * MIN)
    if rng.random() < 0.3 and len(sim.ident.devices) > 1:  # the same person on a second device
        t = sim.touch(t, "web", "browse") + rng.randrange(MIN, 40 * MIN)
    t = sim.sign_up(t) + rng.randrange(MIN, 2 * HOUR)
    for _ in range(rng.choice((1, 1, 2, 2, 3))):
        if rng.random() < 0.35:
            t = sim.loose_contact(t) + rng.randrange(HOUR, 2 * DAY)
        t = walk_journey(sim, rng.choice(journeys), t) + rng.randrange(HOUR, 3 * DAY)
        if t > start + span_ms:
            break
