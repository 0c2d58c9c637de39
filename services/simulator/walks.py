"""Walking a customer through journeys from the definitions, stage by stage."""

from __future__ import annotations

from services.gap_detector.core.definitions import JourneyType, Stage
from services.simulator.personas import DEFAULT_DEPARTMENTS, DEPARTMENTS, INTENTS
from services.simulator.scenarios import DAY, HOUR, MIN, CustomerSim, Pin

OFFSTAGE_HINTS = ("credit", "verif", "diagnos", "fix")  # stages with a back-office step
GOOD_ENDINGS = ("converted", "resolved", "completed", "done", "success")


def endings(jt: JourneyType) -> tuple[str, str | None]:
    """(the terminal stage a successful journey ends in, a terminal stage for giving up, if any)."""
    good = next((g for g in GOOD_ENDINGS if g in jt.terminal), sorted(jt.terminal)[0])
    bad = sorted(jt.terminal - {good})
    return good, bad[0] if bad else None


class JourneyWalk:
    """One journey: each stage tried on a self-service channel first; failures may become assisted
    contacts (channel switch), transfers (hand-offs) and repeat calls; some stages have an offstage
    step or an outbound nudge; the customer may go quiet past the SLA (stall), convert or give up."""

    def __init__(self, sim: CustomerSim, jt: JourneyType) -> None:
        self.sim, self.jt, self.rng, self.p = sim, jt, sim.rng, sim.persona
        self.intent = INTENTS.get(jt.name, f"{jt.name}_help")
        self.depts = DEPARTMENTS.get(jt.name, DEFAULT_DEPARTMENTS)

    def stage_event(self, t: int, channel: str, stage: str, outcome: str, **kw: object) -> int:
        return self.sim.touch(
            t, channel, stage, journey=self.jt.name, stage=stage, intent=self.intent, outcome=outcome, **kw
        )

    def run(self, t: int) -> int:
        for stage in self.jt.stages:
            ok = self.rng.random() >= self.p.fail_rate
            t = self.stage_event(
                t,
                self.sim.self_service(),
                stage.name,
                "success" if ok else "failure",
                sentiment=None if ok else self.sim.mood(),
            )
            t = self.stage_tail(stage, t, ok)
            if t < 0 or self.sim.last_t > self.sim.end_ms:
                return self.sim.last_t
        return self.finish(t)

    def incident(self, pin: Pin) -> int:
        """A customer caught in a drop-off incident: quick earlier stages, then the pinned stage event."""
        first = self.jt.stages[0].name
        t = self.stage_event(
            pin.t - self.rng.randrange(5 * MIN, 20 * MIN), self.sim.self_service(), first, "success"
        )
        stage = self.jt.stages[pin.stage_index]
        t = self.stage_event(max(t, pin.t), pin.channel, stage.name, pin.outcome)
        if pin.outcome == "abandoned":
            if self.rng.random() < self.p.escalate:
                self.sim.assisted_contact(
                    t + self.sim.gap_within(self.jt.thresholds.channel_switch_window_ms),
                    self.jt,
                    stage.name,
                    self.intent,
                    self.depts,
                    resolved=False,
                )
            return self.sim.last_t
        t = self.stage_tail(stage, t, pin.outcome == "success")
        if t < 0:
            return self.sim.last_t
        for later in self.jt.stages[pin.stage_index + 1 :]:
            t = self.stage_tail(
                later, self.stage_event(t, self.sim.self_service(), later.name, "success"), True
            )
            if t < 0:
                return self.sim.last_t
        return self.finish(t)

    def stage_tail(self, stage: Stage, t: int, ok: bool) -> int:
        """What follows a stage attempt; returns the time the next stage starts, or -1 when the customer
        went quiet for good (an open stall)."""
        if not ok:
            t = self.after_failure(stage, t)
        t = self.side_steps(stage, t)
        if self.rng.random() < self.p.stall:
            t += int(stage.sla_ms * self.rng.uniform(1.05, 2.0))
            if self.rng.random() < 0.5:
                return -1
            return t
        return t + max(MIN, int(stage.sla_ms * self.rng.uniform(0.02, 0.6)))

    def after_failure(self, stage: Stage, t: int) -> int:
        rng, sim = self.rng, self.sim
        if rng.random() < self.p.escalate:
            t = sim.assisted_contact(
                t + sim.gap_within(self.jt.thresholds.channel_switch_window_ms),
                self.jt,
                stage.name,
                self.intent,
                self.depts,
                resolved=rng.random() < 0.6,
            )
            if rng.random() < self.p.repeat:
                t = sim.repeat_contacts(t, self.jt, stage.name, self.intent, self.depts)
            return t
        # Try again later on another self-service channel.
        return self.stage_event(
            t + rng.randrange(10 * MIN, 6 * HOUR), sim.self_service(), stage.name, "success"
        )

    def side_steps(self, stage: Stage, t: int) -> int:
        """A back-office step (offstage, another department) and an outbound nudge, sometimes."""
        rng, sim = self.rng, self.sim
        if any(h in stage.name for h in OFFSTAGE_HINTS) or rng.random() < 0.1:
            t = sim.emit(
                t + rng.randrange(MIN, 2 * HOUR),
                "other",
                stage.name.replace("_", "-") + "-backoffice",
                direction="outbound",
                visibility="offstage",
                department=self.depts[1 % len(self.depts)],
                journey=self.jt.name,
                stage=stage.name,
            )
        if "fix" in stage.name and rng.random() < 0.3:  # an engineer at the door
            t = sim.touch(
                t + rng.randrange(2 * HOUR, DAY),
                "field",
                "engineer_visit",
                journey=self.jt.name,
                stage=stage.name,
                intent=self.intent,
                department=self.depts[1 % len(self.depts)],
                outcome="resolved" if rng.random() < 0.7 else "unresolved",
            )
        if rng.random() < 0.25:
            t = sim.outbound(
                t + rng.randrange(MIN, 3 * HOUR), self.jt.name, stage.name, f"{stage.name}_reminder"
            )
        return t

    def finish(self, t: int) -> int:
        good, bad = endings(self.jt)
        if self.rng.random() < self.p.convert:
            t = self.stage_event(t, self.sim.self_service(), good, "success", sentiment=self.sim.mood())
            if self.rng.random() < 0.6:
                self.sim.survey(t + self.rng.randrange(HOUR, DAY), self.jt.name)
        elif bad is not None and self.rng.random() < 0.5:
            # Said so explicitly (cancelled, declined): no stall, the journey is over.
            self.stage_event(t, self.sim.self_service(), bad, "abandoned", sentiment=self.sim.mood())
        return self.sim.last_t


def live(sim: CustomerSim, start: int, span_ms: int, pins: list[tuple[JourneyType, Pin]]) -> None:
    """A customer's whole simulated life: arrive anonymously, sign up, then journeys and loose contacts."""
    rng = sim.rng
    if pins:
        jt, pin = pins[0]
        sim.registered = True
        JourneyWalk(sim, jt).incident(pin)
        return
    t = start
    journeys = list(sim.defs.journeys.values())
    if rng.random() < 0.8:  # anonymous browsing first: a cookie or an app install, nothing else
        ch = "mobile_app" if sim.self_service() == "mobile_app" else "web"
        t = sim.touch(t, ch, "browse") + rng.randrange(MIN, 20 * MIN)
    if rng.random() < 0.3 and len(sim.ident.devices) > 1:  # the same person on a second device
        t = sim.touch(t, "web", "browse") + rng.randrange(MIN, 40 * MIN)
    t = sim.sign_up(t) + rng.randrange(MIN, 2 * HOUR)
    for _ in range(rng.choice((1, 1, 2, 2, 3))):
        if rng.random() < 0.35:
            t = sim.loose_contact(t) + rng.randrange(HOUR, 2 * DAY)
        t = JourneyWalk(sim, rng.choice(journeys)).run(t) + rng.randrange(HOUR, 3 * DAY)
        if t > start + span_ms:
            break
