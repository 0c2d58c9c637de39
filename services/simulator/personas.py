"""Who the simulated customers are: channel habits, devices, mood and how soon they say who they are.

A persona is data only; the generator (``scenarios.py``) reads it to decide which channel a customer
tries first, whether a failure turns into a call, how patient they are and which identifiers an event
carries. Weights are relative, not probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Persona:
    name: str
    weight: float  # share of the population
    self_service: tuple[tuple[str, float], ...]  # channel -> weight, tried first
    assisted: tuple[tuple[str, float], ...]  # channel -> weight, when self-service fails
    devices: tuple[str, ...]  # device types owned (desktop/mobile/tablet)
    sentiment: float  # mean sentiment, -1..1
    identify_early: float  # P(a digital touch is logged in / identified)
    fail_rate: float  # P(a self-service attempt fails)
    escalate: float  # P(a failure turns into an assisted contact soon)
    repeat: float  # P(calling again about the same thing)
    stall: float  # P(going quiet past a stage's SLA)
    convert: float  # P(finishing a journey)
    nps_bias: int  # added to the NPS a survey answer draws
    social: bool = False  # has a social handle and uses it
    loyalty: bool = False  # has a loyalty card and uses it in store
    work_email: bool = False  # has a second e-mail address


PERSONAS: tuple[Persona, ...] = (
    Persona(
        "digital_native",
        3.0,
        (("mobile_app", 3), ("web", 2)),
        (("chat", 3), ("email", 1), ("phone", 1), ("social", 0.5)),
        ("mobile", "desktop"),
        0.2,
        0.5,
        0.25,
        0.5,
        0.15,
        0.15,
        0.75,
        1,
        social=True,
    ),
    Persona(
        "phone_first_senior",
        2.0,
        (("ivr", 3), ("web", 1)),
        (("phone", 5), ("store", 1)),
        ("desktop",),
        -0.1,
        0.2,
        0.45,
        0.85,
        0.35,
        0.2,
        0.6,
        0,
    ),
    Persona(
        "busy_professional",
        2.0,
        (("web", 2), ("mobile_app", 2)),
        (("email", 2), ("phone", 2), ("chat", 1)),
        ("desktop", "mobile", "tablet"),
        0.0,
        0.7,
        0.3,
        0.6,
        0.2,
        0.3,
        0.65,
        -1,
        work_email=True,
    ),
    Persona(
        "store_loyal",
        1.5,
        (("web", 1), ("ivr", 1)),
        (("store", 4), ("phone", 2)),
        ("mobile",),
        0.3,
        0.3,
        0.3,
        0.7,
        0.15,
        0.15,
        0.8,
        2,
        loyalty=True,
    ),
    Persona(
        "social_complainer",
        1.0,
        (("mobile_app", 2), ("web", 1)),
        (("social", 3), ("phone", 2), ("chat", 2), ("email", 1)),
        ("mobile",),
        -0.5,
        0.5,
        0.5,
        0.9,
        0.5,
        0.2,
        0.5,
        -3,
        social=True,
    ),
    Persona(
        "price_hunter",
        1.5,
        (("web", 4), ("mobile_app", 1)),
        (("chat", 2), ("phone", 1)),
        ("desktop", "mobile"),
        0.0,
        0.35,
        0.3,
        0.4,
        0.1,
        0.4,
        0.45,
        -1,
    ),
    Persona(
        "small_business_owner",
        1.0,
        (("web", 2), ("ivr", 1)),
        (("phone", 3), ("email", 2), ("store", 1)),
        ("desktop", "mobile"),
        -0.2,
        0.6,
        0.35,
        0.8,
        0.3,
        0.25,
        0.7,
        0,
        work_email=True,
    ),
)

# Department that handles a journey type first, and where a transfer sends the customer next.
DEPARTMENTS: dict[str, tuple[str, ...]] = {
    "onboarding": ("sales", "verification", "customer_care"),
    "purchase": ("sales", "billing", "customer_care"),
    "upgrade": ("sales", "credit", "billing"),
    "technical_issue": ("tech_support", "field_ops", "customer_care"),
}
DEFAULT_DEPARTMENTS = ("customer_care", "billing", "tech_support")

# Reasons for contact per journey type; journeys not listed here use '<type>_help'.
INTENTS: dict[str, str] = {
    "onboarding": "account_opening",
    "purchase": "order_help",
    "upgrade": "plan_change",
    "technical_issue": "no_connection",
}
# Contacts outside any journey: keyed by intent only.
LOOSE_INTENTS = ("billing_question", "address_change", "complaint")

DEVICE_OS = {
    "desktop": (("Windows", "Dell XPS 13"), ("macOS", "MacBook Air"), ("Linux", "ThinkPad T14")),
    "mobile": (("iOS", "iPhone 15"), ("Android", "Pixel 8"), ("Android", "Galaxy S24")),
    "tablet": (("iPadOS", "iPad Air"), ("Android", "Galaxy Tab S9")),
}
