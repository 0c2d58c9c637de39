"""Realistic, unique and deterministic identifiers for simulated customers.

Phone numbers come only from ranges reserved for drama/fiction (Ofcom's 0113 496 0xxx … and the
North American 555-01xx), all of which ``phonenumbers`` accepts as valid, so the stitcher can normalise
them. Uniqueness comes from the customer's index, never from chance, so two strangers never share a
real identifier; only the junk values below are shared on purpose.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import phonenumbers

from services.simulator.personas import DEVICE_OS, Persona

FIRST = (
    "olivia",
    "noah",
    "amelia",
    "liam",
    "isla",
    "oliver",
    "ava",
    "george",
    "mia",
    "arthur",
    "sofia",
    "leo",
    "grace",
    "harry",
    "chloe",
    "jack",
    "emily",
    "oscar",
    "lily",
    "james",
    "priya",
    "mohammed",
    "zara",
    "wei",
    "lucia",
    "mateo",
    "hana",
    "kofi",
    "anya",
    "ravi",
)
LAST = (
    "smith",
    "jones",
    "taylor",
    "brown",
    "williams",
    "wilson",
    "johnson",
    "davies",
    "patel",
    "wright",
    "robinson",
    "thompson",
    "evans",
    "walker",
    "white",
    "roberts",
    "green",
    "hall",
    "khan",
    "clarke",
    "lewis",
    "young",
    "martin",
    "garcia",
    "nguyen",
    "okafor",
    "kowalski",
    "silva",
    "schmidt",
    "rossi",
)
DOMAINS = ("example.com", "example.org", "example.net", "mail.example.co.uk")
WORK_DOMAINS = ("acme.example", "globex.example", "initech.example")

# Fictional number blocks of 1000 (UK: +44 <prefix> 0xxx) and 100 (US: +1 <area> 555 01xx).
_UK_BLOCKS = (
    "113496",
    "114496",
    "116496",
    "117496",
    "118496",
    "121496",
    "131496",
    "141496",
    "151496",
    "161496",
    "207946",
    "191498",
    "292018",
)
_US_AREAS = ("202", "212", "312", "415", "617", "713", "206", "303", "404", "503")
PHONE_POOL = len(_UK_BLOCKS) * 1000 + len(_US_AREAS) * 100

# Values real systems are full of and that must never join two strangers.
JUNK = {
    "email": ("test@test.com", "noreply@example.com", "none@none.com"),
    "phone": ("0000000000", "1234567890", "+44 0000 000000"),
    "account_id": ("null", "unknown", "N/A"),
    "loyalty_id": ("0", "unknown", "none"),
}


def phone_e164(n: int) -> str | None:
    """The n-th fictional number in E.164, or None when the pool is exhausted."""
    uk = len(_UK_BLOCKS) * 1000
    if n < uk:
        return f"+44{_UK_BLOCKS[n // 1000]}{n % 1000:04d}"
    n -= uk
    if n < len(_US_AREAS) * 100:
        return f"+1{_US_AREAS[n // 100]}555{100 + n % 100:04d}"
    return None


def phone_display(e164: str, rng: random.Random) -> str:
    """The number as a person or a system would type it: E.164, international or (UK only) national."""
    parsed = phonenumbers.parse(e164)
    styles = [phonenumbers.PhoneNumberFormat.E164, phonenumbers.PhoneNumberFormat.INTERNATIONAL]
    if parsed.country_code == 44:
        styles.append(phonenumbers.PhoneNumberFormat.NATIONAL)  # the default region is GB
    return phonenumbers.format_number(parsed, rng.choice(styles))


@dataclass(frozen=True)
class Device:
    kind: str  # desktop / mobile / tablet
    os: str
    model: str
    device_id: str  # app install id (mobile/tablet) — carried by app events
    cookie_id: str  # browser cookie — carried by web and chat events


@dataclass
class Identity:
    account_id: str
    emails: list[str]
    phones: list[str] = field(default_factory=list)  # E.164
    devices: list[Device] = field(default_factory=list)
    loyalty_id: str | None = None
    social_handle: str | None = None

    def as_truth(self) -> dict[str, list[str]]:
        """Every raw identifier of this customer by type (the ground-truth file's view)."""
        out: dict[str, list[str]] = {
            "account_id": [self.account_id],
            "email": list(self.emails),
            "phone": list(self.phones),
            "device_id": [d.device_id for d in self.devices],
            "cookie_id": [d.cookie_id for d in self.devices],
        }
        if self.loyalty_id:
            out["loyalty_id"] = [self.loyalty_id]
        if self.social_handle:
            out["social_handle"] = [self.social_handle]
        return {k: v for k, v in out.items() if v}


class PhoneBook:
    """Hands out each fictional number once, starting at ``offset`` (so separate demo runs rarely reuse
    a number) and wrapping around the pool."""

    def __init__(self, offset: int = 0) -> None:
        self.offset, self.used = offset % PHONE_POOL, 0

    def take(self) -> str | None:
        if self.used >= PHONE_POOL:
            return None
        self.used += 1
        return phone_e164((self.offset + self.used - 1) % PHONE_POOL)


def make_identity(
    index: int, persona: Persona, rng: random.Random, phones_left: PhoneBook, namespace: str = ""
) -> Identity:
    """Identifiers of customer ``index``. ``namespace`` keeps separate runs (demo) from sharing ids."""
    first, last = rng.choice(FIRST), rng.choice(LAST)
    sep = rng.choice((".", "_", ""))
    tag = f"{namespace}{index}"
    emails = [f"{first}{sep}{last}{tag}@{rng.choice(DOMAINS)}"]
    if persona.work_email:
        emails.append(f"{first[0]}.{last}{tag}@{rng.choice(WORK_DOMAINS)}")
    phones = []
    for _ in range(2 if persona.name == "small_business_owner" else 1):
        number = phones_left.take()
        if number is not None:
            phones.append(number)
    devices = []
    for j, kind in enumerate(persona.devices):
        os_name, model = rng.choice(DEVICE_OS[kind])
        devices.append(
            Device(
                kind,
                os_name,
                model,
                f"dev-{namespace}{index:07d}-{j}{rng.getrandbits(32):08x}",
                f"ck-{namespace}{index:07d}-{j}{rng.getrandbits(32):08x}",
            )
        )
    return Identity(
        account_id=f"ACC{namespace.upper()}{index:08d}",
        emails=emails,
        phones=phones,
        devices=devices,
        loyalty_id=f"LOY{namespace.upper()}{index:09d}" if persona.loyalty else None,
        social_handle=f"@{first}{last[:3]}{tag}" if persona.social else None,
    )
