"""A simulated population: customers' events in arrival order, the noise real pipelines see (late and
out-of-order events, redeliveries, malformed records, junk identifiers) and the ground truth.

Deterministic: every random choice comes from ``random.Random`` seeded with the seed (one stream per
customer, one for the noise), and time only from ``SimConfig.start_ms`` — never the wall clock.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from services.common.timeutil import parse_rfc3339_ms
from services.gap_detector.core.definitions import Definitions, JourneyType
from services.simulator import linking
from services.simulator.identities import JUNK, PhoneBook, make_identity
from services.simulator.personas import PERSONAS
from services.simulator.scenarios import DAY, MIN, CustomerSim, Pin
from services.simulator.walks import live

DEFAULT_START = "2026-11-01T00:00:00Z"


@dataclass(frozen=True)
class SimConfig:
    customers: int = 200
    seed: int = 42
    start_ms: int = parse_rfc3339_ms(DEFAULT_START)
    span_ms: int = 7 * DAY
    late: float = 0.05  # share of events delivered late (out of order)
    duplicates: float = 0.02  # share of events delivered twice
    malformed: float = 0.01  # malformed records per valid event
    junk: float = 0.1  # share of customers who also carry a shared junk identifier
    incidents: int = 1  # injected drop-off incidents
    lateness_ms: int = 300_000  # the detector's watermark lateness; displacement stays below it
    namespace: str = ""  # prefix of identifiers, so separate runs (the demo) never share one


@dataclass(frozen=True)
class Record:
    arrival_ms: int
    seq: int
    key: str
    value: dict[str, Any] | None = None
    raw: str | None = None  # deliberately malformed bytes (as text)

    def line(self) -> bytes:
        """The JSONL form: {"key", "value"} for events, {"key", "raw"} for malformed bytes."""
        body = (
            {"key": self.key, "value": self.value} if self.raw is None else {"key": self.key, "raw": self.raw}
        )
        return orjson.dumps(body)

    def payload(self) -> bytes:
        return self.raw.encode() if self.raw is not None else orjson.dumps(self.value)


@dataclass
class Population:
    records: list[Record]
    events: dict[str, list[dict[str, Any]]]  # true customer -> valid events
    identifiers: dict[str, dict[str, list[str]]]  # true customer -> type -> raw values used
    personas: dict[str, str]
    incidents: list[dict[str, Any]]
    counts: dict[str, int] = field(default_factory=dict)


def _incident_pins(cfg: SimConfig, defs: Definitions, rng: random.Random) -> list[tuple[dict[str, Any], int]]:
    """Where the drop-off incidents happen: the most important last stage of a journey (a payment
    outage, with the default definitions), on the web."""
    if cfg.incidents <= 0:
        return []
    jt = min(defs.journeys.values(), key=lambda j: (-j.stages[-1].importance, -len(j.stages), j.name))
    stage = jt.stages[-1].name
    out = []
    for k in range(cfg.incidents):
        minute = (cfg.start_ms + int(cfg.span_ms * (0.3 + 0.4 * k / max(1, cfg.incidents)))) // MIN * MIN
        minute += rng.randrange(0, 30) * MIN
        out.append(
            (
                {"journey": jt.name, "stage": stage, "channel": "web", "start_ms": minute, "end_ms": minute},
                jt.thresholds.dropoff_min_volume + 10,
            )
        )
    return out


def _connect(sim: CustomerSim) -> None:
    """Make the customer's identity graph connected, as real systems eventually do (a login, a verified
    call), such that no rule ever depends on a link the stitcher cannot see yet (linking.link_on_arrival);
    anonymous islands left over get the account id on one of their events — a merge."""
    window = max(
        [sim.defs.defaults.device_switch_window_ms]
        + [j.thresholds.device_switch_window_ms for j in sim.defs.journeys.values()]
    )
    linking.link_on_arrival(sim.events, sim.ident.account_id, window, _time)
    account = linking.canon("account_id", sim.ident.account_id)
    for group in linking.components(sim.events):
        if account in group:
            continue
        members = [e for e in sim.events if set(linking.id_keys(e)) & group]
        target = members[-1] if sim.rng.random() < 0.5 else sim.rng.choice(members)
        target["identifiers"]["account_id"] = sim.ident.account_id


def _time(ev: dict[str, Any]) -> int:
    return parse_rfc3339_ms(ev["occurred_at"])


def _add_junk(sim: CustomerSim) -> int:
    added = 0
    for ev in sim.rng.sample(sim.events, min(2, len(sim.events))):
        free = [t for t in JUNK if t not in ev["identifiers"]]
        if free:
            id_type = sim.rng.choice(free)
            ev["identifiers"][id_type] = sim.rng.choice(JUNK[id_type])
            added += 1
    return added


def _customers(cfg: SimConfig, defs: Definitions) -> tuple[list[CustomerSim], list[dict[str, Any]]]:
    rng = random.Random(f"{cfg.seed}:population")
    end = cfg.start_ms + cfg.span_ms
    phones = PhoneBook(zlib.crc32(cfg.namespace.encode()) if cfg.namespace else 0)
    sims: list[CustomerSim] = []
    plan: list[tuple[Any, list[tuple[JourneyType, Pin]]]] = []
    for _ in range(cfg.customers):
        plan.append((rng.choices(PERSONAS, weights=[p.weight for p in PERSONAS])[0], []))
    incidents = []
    for incident, volume in _incident_pins(cfg, defs, rng):
        jt = defs.journeys[incident["journey"]]
        stage_index = len(jt.stages) - 1
        for _ in range(volume):
            outcome = "abandoned" if rng.random() < 0.75 else "failure"
            pin = Pin(stage_index, incident["start_ms"] + rng.randrange(55_000), incident["channel"], outcome)
            plan.append((rng.choice([p for p in PERSONAS if "web" in dict(p.self_service)]), [(jt, pin)]))
        incidents.append(incident)
    for index, (persona, pins) in enumerate(plan):
        crng = random.Random(f"{cfg.seed}:customer:{index}")
        ident = make_identity(index, persona, crng, phones, cfg.namespace)
        sim = CustomerSim(
            index, f"T{index:07d}", persona, ident, crng, defs, end, id_prefix=f"sim{cfg.namespace}"
        )
        live(sim, cfg.start_ms + int(crng.random() * cfg.span_ms * 0.7), cfg.span_ms, pins)
        sims.append(sim)
    return sims, incidents


def _corrupt(ev: dict[str, Any], n: int, rng: random.Random) -> str:
    bad = orjson.loads(orjson.dumps(ev))
    bad["event_id"] = f"bad-{n:06d}"
    kind = rng.randrange(5)
    if kind == 0:
        text = orjson.dumps(bad).decode()
        return text[: rng.randrange(5, len(text) - 1)]  # truncated: not JSON
    if kind == 1:
        bad["nps"] = 11
    elif kind == 2:
        bad["channel"] = "fax machine"  # channels are open names (channel_event.v1.1): this is not one
    elif kind == 3:
        bad["occurred_at"] = bad["occurred_at"].replace("Z", "")  # no offset
    else:
        del bad["identifiers"]
    return orjson.dumps(bad).decode()


def generate(cfg: SimConfig, defs: Definitions) -> Population:
    sims, incidents = _customers(cfg, defs)
    noise = random.Random(f"{cfg.seed}:noise")
    counts = {"junk_identifiers": 0, "late": 0, "duplicates": 0, "malformed": 0}
    events: dict[str, list[dict[str, Any]]] = {}
    for sim in sims:
        _connect(sim)
        if noise.random() < cfg.junk:
            counts["junk_identifiers"] += _add_junk(sim)
        if sim.events:
            events[sim.true_id] = sim.events
    records: list[Record] = []
    max_delay = cfg.lateness_ms - MIN
    for cust in sorted(events):
        # One key per customer (as a channel system keys by its account): one partition, one order.
        key = f"k{zlib.crc32(f'{cfg.namespace}{cfg.seed}:{cust}'.encode()):08x}"
        links = linking.linking_events(events[cust], _time)
        for ev in events[cust]:
            t = _time(ev)
            arrival = t
            if noise.random() < cfg.late and max_delay > 30_000 and ev["event_id"] not in links:
                arrival += noise.randrange(30_000, max_delay)
                counts["late"] += 1
            records.append(Record(arrival, len(records), key, value=ev))
            if noise.random() < cfg.duplicates:
                dup_at = t + noise.randrange(1000, max(2000, max_delay))
                records.append(Record(max(dup_at, arrival + 1), len(records), key, value=ev))
                counts["duplicates"] += 1
            if noise.random() < cfg.malformed:
                counts["malformed"] += 1
                bad = _corrupt(ev, counts["malformed"], noise)
                records.append(Record(t + noise.randrange(1000, 60_000), len(records), key, raw=bad))
    records.sort(key=lambda r: (r.arrival_ms, r.seq))
    identifiers = {
        s.true_id: _used_identifiers(s.ident.as_truth(), events[s.true_id])
        for s in sims
        if s.true_id in events
    }
    counts["events"] = sum(len(v) for v in events.values())
    counts["records"] = len(records)
    return Population(
        records, events, identifiers, {s.true_id: s.persona.name for s in sims}, incidents, counts
    )


def _used_identifiers(owned: dict[str, list[str]], events: list[dict[str, Any]]) -> dict[str, list[str]]:
    used = {(t, v) for ev in events for t, v in ev["identifiers"].items()}
    out: dict[str, list[str]] = {}
    for id_type, values in owned.items():
        if id_type == "phone":
            keys = {linking.canon("phone", v) for t, v in used if t == "phone"}
            hits = [v for v in values if linking.canon("phone", v) in keys]
        else:
            hits = [v for v in values if (id_type, v) in used]
        if hits:
            out[id_type] = hits
    return out
