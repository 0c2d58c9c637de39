"""One customer's life as channel events: journeys from the definitions walked stage by stage, with the
gaps real customers produce (failed self-service then a call, transfers, repeat contacts, stalls,
outbound touches, offstage steps, surveys).

Pure and deterministic: everything random comes from the ``random.Random`` handed in. The generator
does not decide which alerts are due — the oracle derives them from the events afterwards.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from services.common.timeutil import format_ms
from services.gap_detector.core.definitions import Definitions, JourneyType
from services.simulator.identities import Device, Identity, phone_display
from services.simulator.personas import DEFAULT_DEPARTMENTS, LOOSE_INTENTS, Persona

MIN, HOUR, DAY = 60_000, 3_600_000, 86_400_000
ASSISTED_TOUCH = {
    "phone": "agent_call",
    "chat": "chat_session",
    "email": "email_enquiry",
    "store": "store_visit",
    "field": "engineer_visit",
    "social": "social_post",
}


@dataclass(frozen=True)
class Pin:
    """Force one stage event to a cell and minute (a drop-off incident)."""

    stage_index: int
    t: int
    channel: str
    outcome: str


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([c for c, _ in weighted], weights=[w for _, w in weighted])[0]


@dataclass
class CustomerSim:
    index: int
    true_id: str
    persona: Persona
    ident: Identity
    rng: random.Random
    defs: Definitions
    end_ms: int
    id_prefix: str = "sim"
    events: list[dict[str, Any]] = field(default_factory=list)
    last_t: int = 0
    registered: bool = False

    # -- emitting ------------------------------------------------------------------------------
    def emit(self, t: int, channel: str, touchpoint: str, **kw: Any) -> int:
        """Append an event at ``t`` (bumped to stay strictly after the previous one: no ties, so event
        order is unambiguous). Returns its time; nothing is emitted past the end of the simulation."""
        t = max(t, self.last_t + 1 + self.rng.randrange(1000))
        if t > self.end_ms:
            return t
        self.last_t = t
        ev: dict[str, Any] = {
            "schema_version": "1.0",
            "event_id": f"{self.id_prefix}-{self.index:07d}-{len(self.events):04d}",
            "occurred_at": format_ms(t),
            "channel": channel,
            "touchpoint": touchpoint,
            "identifiers": self._identifiers(channel, kw.pop("device", None), kw),
        }
        for name in ("direction", "visibility", "department"):
            if kw.get(name):
                ev[name] = kw[name]
        if kw.get("journey"):
            ev["journey"] = {"type": kw["journey"], "stage": kw["stage"]}
        for name in ("intent", "outcome", "sentiment", "nps", "emotion", "device_info"):
            if kw.get(name) is not None:
                ev["device" if name == "device_info" else name] = kw[name]
        ev["persona"] = self.persona.name
        ev["source"] = f"sim/{channel}"
        self.events.append(ev)
        return t

    def _identifiers(self, channel: str, device: Device | None, kw: dict[str, Any]) -> dict[str, str]:
        """What this channel knows about the customer. Never both device_id and cookie_id on one
        event (see oracle.oevent)."""
        idn, rng = self.ident, self.rng
        outbound = kw.get("direction") == "outbound"
        known = self.registered and rng.random() < max(self.persona.identify_early, 0.3)
        ids: dict[str, str] = {}
        if kw.get("visibility") == "offstage" or channel in ("field", "other"):
            ids["account_id"] = idn.account_id
        elif channel == "web" or channel == "chat":
            assert device is not None
            ids["cookie_id"] = device.cookie_id
            if channel == "chat" or known:
                ids["email"] = rng.choice(idn.emails)
        elif channel == "mobile_app":
            assert device is not None
            ids["device_id"] = device.device_id
            if known:
                ids["account_id"] = idn.account_id
        elif channel in ("phone", "ivr", "sms"):
            if idn.phones:
                ids["phone"] = phone_display(rng.choice(idn.phones), rng)
            if outbound or not idn.phones or (channel == "phone" and rng.random() < 0.6):
                ids["account_id"] = idn.account_id
        elif channel == "email":
            ids["email"] = rng.choice(idn.emails)
            if outbound:
                ids["account_id"] = idn.account_id
        elif channel == "store":
            if idn.loyalty_id:
                ids["loyalty_id"] = idn.loyalty_id
            if not idn.loyalty_id or rng.random() < 0.3:
                ids["account_id"] = idn.account_id
        elif channel == "social":
            ids["social_handle"] = idn.social_handle or ""
        return ids

    # -- helpers -------------------------------------------------------------------------------
    def device_for(self, channel: str) -> Device | None:
        if channel == "mobile_app":
            apps = [d for d in self.ident.devices if d.kind in ("mobile", "tablet")]
            return self.rng.choice(apps or self.ident.devices)
        if channel in ("web", "chat"):
            return self.rng.choice(self.ident.devices)
        return None

    def self_service(self) -> str:
        ch = _pick(self.rng, self.persona.self_service)
        return "web" if ch == "mobile_app" and not self.ident.devices else ch

    def assisted(self) -> str:
        ch = _pick(self.rng, self.persona.assisted)
        if ch == "store" and not self.ident.loyalty_id and self.rng.random() < 0.5:
            return "phone"
        return ch

    def mood(self) -> float:
        return round(max(-1.0, min(1.0, self.rng.gauss(self.persona.sentiment, 0.35))), 2)

    def gap_within(self, window_ms: int) -> int:
        """A gap that lands inside a rule window — now and then exactly on its inclusive edge, or one
        second past it, to test the boundaries."""
        r = self.rng.random()
        if r < 0.05:
            return window_ms
        if r < 0.1:
            return window_ms + 1000
        return self.rng.randrange(MIN, max(MIN + 1, window_ms * 9 // 10))

    def touch(self, t: int, channel: str, touchpoint: str, **kw: Any) -> int:
        device = self.device_for(channel)
        info = {"type": device.kind, "os": device.os, "model": device.model} if device else None
        if channel in ("phone",) and kw.get("direction") != "outbound":
            info = {"type": "landline" if self.persona.name == "phone_first_senior" else "mobile"}
        return self.emit(t, channel, touchpoint, device=device, device_info=info, **kw)

    # -- behaviour -----------------------------------------------------------------------------
    def sign_up(self, t: int) -> int:
        """Give the e-mail (and so link the browser cookie) — where most merges come from."""
        ch = self.self_service() if self.rng.random() < 0.7 else "web"
        ch = "web" if ch == "ivr" else ch
        self.registered = True
        t = self.touch(t, ch, "sign_up", outcome="success")
        if not self.events or self.events[-1]["touchpoint"] != "sign_up":
            return t  # past the end of the simulation: nothing was emitted
        if ch == "web":
            self.events[-1]["identifiers"]["email"] = self.ident.emails[0]
        elif ch == "mobile_app":
            self.events[-1]["identifiers"]["account_id"] = self.ident.account_id
        return t

    def assisted_contact(
        self,
        t: int,
        jt: JourneyType | None,
        stage: str | None,
        intent: str,
        depts: tuple[str, ...],
        resolved: bool,
    ) -> int:
        ch = self.assisted()
        if ch == "social" and not self.ident.social_handle:
            ch = "phone"
        sentiment = self.mood()
        emotion = "frustrated" if sentiment < -0.4 else None
        journey = jt.name if jt else None
        transfer = ch == "phone" and self.rng.random() < 0.35
        t = self.touch(
            t,
            ch,
            ASSISTED_TOUCH.get(ch, "contact"),
            journey=journey,
            stage=stage,
            intent=intent,
            department=depts[0],
            sentiment=sentiment,
            emotion=emotion,
            outcome="transferred" if transfer else ("resolved" if resolved else "unresolved"),
        )
        if transfer:
            window = self.defs.thresholds(journey).handoff_window_ms
            hops = 2 if self.rng.random() < 0.3 else 1
            for hop in range(1, hops + 1):
                t = self.touch(
                    t + self.rng.randrange(2 * MIN, min(window, 40 * MIN)),
                    "phone",
                    "agent_call",
                    journey=journey,
                    stage=stage,
                    intent=intent,
                    department=depts[hop % len(depts)],
                    sentiment=self.mood(),
                    outcome="resolved" if resolved else "unresolved",
                )
        return t

    def repeat_contacts(
        self, t: int, jt: JourneyType | None, stage: str | None, intent: str, depts: tuple[str, ...]
    ) -> int:
        window = self.defs.thresholds(jt.name if jt else None).repeat_contact_window_ms
        for _ in range(self.rng.randint(1, 3)):
            t = self.assisted_contact(
                t + self.rng.randrange(2 * HOUR, max(3 * HOUR, window // 3)),
                jt,
                stage,
                intent,
                depts,
                resolved=False,
            )
        return t

    def outbound(self, t: int, journey: str | None, stage: str | None, what: str) -> int:
        ch = "sms" if self.ident.phones and self.rng.random() < 0.4 else "email"
        return self.touch(t, ch, what, direction="outbound", journey=journey, stage=stage)

    def survey(self, t: int, journey: str) -> int:
        nps = max(0, min(10, int(self.rng.gauss(7 + self.persona.nps_bias, 2))))
        ch = "sms" if self.ident.phones and self.rng.random() < 0.5 else "email"
        return self.touch(t, ch, "nps_survey", nps=nps, sentiment=round((nps - 5) / 5, 2))

    def loose_contact(self, t: int) -> int:
        """A contact outside any journey, keyed by intent (billing questions, complaints…)."""
        intent = self.rng.choice(LOOSE_INTENTS)
        if self.rng.random() < 0.5:
            t = self.touch(t, self.self_service(), "faq", intent=intent, outcome="failure")
            t += self.gap_within(self.defs.defaults.channel_switch_window_ms)
        t = self.assisted_contact(t, None, None, intent, DEFAULT_DEPARTMENTS, resolved=False)
        if self.rng.random() < self.persona.repeat:
            t = self.repeat_contacts(t, None, None, intent, DEFAULT_DEPARTMENTS)
        return t
