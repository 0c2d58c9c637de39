"""One caller's journey, used by the API, browser and ops tests: the app checkout fails, a payment
e-mail goes out, the customer calls billing, then scores a low NPS. The detector flagged the switch."""

from __future__ import annotations

from typing import Any

from tests.integration.api.journey_seed import Customer

ALICE = "c_5e1f0a2b3c4d5e6f"
ALICE_OLD = "c_2222222222222222"  # merged into ALICE
BOB = "c_0b0b0b0b0b0b0b0b"
ALICE_PHONE = "+44 7700 900958"
ALICE_EMAIL = "Alice.Smith@Example.com"
ALICE_COOKIE = "ck_9f8e7d6c5b4a"  # linked to the merged-away id
BOB_PHONE = "+44 7700 900123"


def _ev(event_id: str, at: str, channel: str, touchpoint: str, **extra: Any) -> dict[str, Any]:
    return {"event_id": event_id, "occurred_at": at, "channel": channel, "touchpoint": touchpoint, **extra}


ALICE_EVENTS = [
    _ev(
        "web-1",
        "2026-11-02T08:00:00Z",
        "web",
        "product_page",
        journey={"type": "purchase", "stage": "browse"},
        sentiment=0.4,
        emotion="curious",
        device={"type": "desktop"},
    ),
    _ev(
        "app-1",
        "2026-11-02T08:08:00Z",
        "mobile_app",
        "checkout_payment",
        outcome="failure",
        journey={"type": "purchase", "stage": "payment"},
        sentiment=-0.5,
        emotion="frustrated",
        device={"type": "mobile"},
    ),
    _ev(
        "risk-1",
        "2026-11-02T08:09:00Z",
        "other",
        "fraud_screen",
        visibility="offstage",
        direction="outbound",
        department="risk",
    ),
    _ev("mail-1", "2026-11-02T08:10:00Z", "email", "payment_failed_notice", direction="outbound"),
    _ev(
        "call-77",
        "2026-11-02T08:20:00Z",
        "phone",
        "agent_call",
        department="billing",
        intent="payment_problem",
        sentiment=-0.7,
        emotion="angry",
        journey={"type": "purchase", "stage": "payment"},
    ),
    _ev("nps-1", "2026-11-02T08:45:00Z", "sms", "nps_survey", nps=3, sentiment=-0.2, direction="inbound"),
]

SWITCH_ALERT = {
    "schema_version": "1.0",
    "alert_id": "a_9b8c7d6e5f4a3b2c",
    "type": "channel_switch",
    "severity": "high",
    "customer_id": ALICE,
    "detected_at": "2026-11-02T08:20:01.050Z",
    "occurred_at": "2026-11-02T08:20:00Z",
    "journey": {"type": "purchase", "stage": "payment"},
    "title": "App checkout failed, then called",
    "evidence": {
        "event_ids": ["app-1", "call-77"],
        "channels": ["mobile_app", "phone"],
        "window_seconds": 720,
    },
}
OLD_ALERT = {
    "schema_version": "1.0",
    "alert_id": "a_1111222233334444",
    "type": "device_switch",
    "severity": "low",
    "customer_id": ALICE_OLD,
    "detected_at": "2026-11-02T08:08:02Z",
    "occurred_at": "2026-11-02T08:08:00Z",
    "evidence": {"event_ids": ["web-1", "app-1"], "devices": ["desktop", "mobile"], "window_seconds": 480},
}
BOB_ALERT = {
    "schema_version": "1.0",
    "alert_id": "a_5555666677778888",
    "type": "repeat_contact",
    "severity": "medium",
    "customer_id": BOB,
    "detected_at": "2026-11-02T09:30:00Z",
    "occurred_at": "2026-11-02T09:29:00Z",
    "evidence": {"event_ids": ["b-1", "b-2", "b-3"], "count": 3, "window_seconds": 604800},
}
SPIKE_ALERT = {
    "schema_version": "1.0",
    "alert_id": "a_99990000aaaabbbb",
    "type": "dropoff_spike",
    "severity": "high",
    "detected_at": "2026-11-02T09:00:00Z",
    "occurred_at": "2026-11-02T08:59:00Z",
    "journey": {"type": "purchase", "stage": "payment"},
    "evidence": {"channel": "mobile_app", "rate": 0.5, "baseline": 0.1, "factor": 2, "volume": 40},
}


def alice() -> Customer:
    return Customer(
        ALICE,
        {"phone": ALICE_PHONE, "email": ALICE_EMAIL},
        ALICE_EVENTS,
        aliases=[ALICE_OLD],
        open_alerts=[SWITCH_ALERT],
    )


def alice_old() -> Customer:
    """The merged-away id still owns a cookie link, as after a merge the stitcher has not folded yet."""
    return Customer(ALICE_OLD, {"cookie_id": ALICE_COOKIE}, [])


def bob() -> Customer:
    return Customer(
        BOB,
        {"phone": BOB_PHONE},
        [
            _ev("b-1", "2026-11-02T09:00:00Z", "phone", "agent_call", intent="billing_question"),
            _ev("b-2", "2026-11-02T09:10:00Z", "phone", "agent_call", intent="billing_question"),
            _ev("b-3", "2026-11-02T09:29:00Z", "chat", "agent_chat", intent="billing_question"),
        ],
        open_alerts=[BOB_ALERT],
    )


ALL_ALERTS = [SWITCH_ALERT, OLD_ALERT, BOB_ALERT, SPIKE_ALERT]
