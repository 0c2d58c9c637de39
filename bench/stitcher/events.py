"""Synthetic channel events for the stitcher benchmark: ~400 bytes, N customers, 2-3 identifiers each.

A customer owns an e-mail, a phone, a cookie and a device; each event carries 2-3 of them, so the same
customer's first events often mint separate ids that later events merge (the 'some merges' of the brief).
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import orjson

from services.common.timeutil import format_ms

CHANNELS = ("web", "mobile_app", "email", "sms", "phone", "ivr", "chat", "store")
TOUCHPOINTS = ("login", "browse", "checkout_payment", "agent_call", "ivr_menu", "chat_message", "complaint")
STAGES = ("browse", "cart", "checkout", "payment", "confirmation")


def identifiers(customer: int, rng: random.Random) -> dict[str, str]:
    pool = {
        "email": f"customer{customer}@example.com",
        "phone": f"+4477009{customer:05d}",
        "cookie_id": f"ck_{customer:08x}",
        "device_id": f"dev-{customer:08x}",
    }
    picks = rng.sample(sorted(pool), rng.choice((2, 2, 3)))
    return {k: pool[k] for k in picks}


def events(n: int, customers: int, start_ms: int, seed: int = 7, span_ms: int = 3_600_000) -> Iterator[bytes]:
    """n encoded events over ``span_ms`` of event time, in roughly increasing event time."""
    rng = random.Random(seed)
    for i in range(n):
        c = rng.randrange(customers)
        body = {
            "event_id": f"bench-{seed}-{i}",
            "occurred_at": format_ms(start_ms + i * span_ms // max(n, 1)),
            "channel": rng.choice(CHANNELS),
            "touchpoint": rng.choice(TOUCHPOINTS),
            "identifiers": identifiers(c, rng),
            "direction": "inbound",
            "department": "sales",
            "journey": {"type": "purchase", "stage": rng.choice(STAGES)},
            "intent": "buy_plan",
            "outcome": rng.choice(("success", "failure", "pending")),
            "sentiment": round(rng.uniform(-1, 1), 2),
            "device": {"type": "mobile", "os": "android"},
            "attributes": {"campaign": "winter-sale-2026", "session": f"s-{rng.getrandbits(48):012x}"},
        }
        yield orjson.dumps(body)
