"""Attributes lose e-mail addresses and phone numbers (however written) and keep the rest; an allow-list
drops every attribute it does not name."""

from __future__ import annotations

import pytest

from services.stitcher.core.scrub import REDACTED, AttributePolicy, scrub_text

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "text",
    [
        "call me on +44 7700 900958 after 5",
        "ring 07700-900958",
        "tel (0)7700 900958",
        "+447700900958",
        "mail ana.smith+x@example.co.uk please",
        "ANA@EXAMPLE.COM",
        "card 4111 1111 1111 1111",
        "07700.900.958",
    ],
)
def test_phone_numbers_and_emails_in_text_are_redacted(text: str) -> None:
    out = scrub_text(text)
    assert REDACTED in out
    digits = "".join(ch for ch in out if ch.isdigit())
    assert "@" not in out and len(digits) < 9, out


@pytest.mark.parametrize(
    "text",
    [
        "order 12345 for £129.99",
        "2026-11-02 at 08:10",
        "plan gold-2",
        "5 stars",
        "ticket INC-20261102",
        "@ana on twitter said hi",
    ],
)
def test_ordinary_text_passes_unchanged(text: str) -> None:
    assert scrub_text(text) == text


def test_the_default_policy_keeps_names_and_scrubs_values() -> None:
    attrs = {
        "note": "customer said: reach me at ana@example.com or 07700 900958",
        "amount": 129.99,
        "order_id": 123456,
        "vip": True,
        "callback": 447700900958,
        "ana@example.com": "x",
        "none": None,
    }
    out = AttributePolicy().apply(attrs)
    assert out == {
        "note": f"customer said: reach me at {REDACTED} or {REDACTED}",
        "amount": 129.99,
        "order_id": 123456,
        "vip": True,
        "callback": REDACTED,
        "none": None,
    }
    assert attrs["callback"] == 447700900958  # the input is not changed


def test_an_allow_list_drops_every_other_attribute() -> None:
    policy = AttributePolicy.parse("plan, amount")
    assert policy.apply({"plan": "gold", "amount": 3, "note": "hello"}) == {"plan": "gold", "amount": 3}
    assert AttributePolicy.parse("").apply({"plan": "gold"}) == {}
    assert AttributePolicy.parse(None).allow is None


def test_scrubbing_can_be_turned_off_for_an_allow_list_the_operator_vouches_for() -> None:
    policy = AttributePolicy.parse("ref", scrub=False)
    assert policy.apply({"ref": "123456789012"}) == {"ref": "123456789012"}
