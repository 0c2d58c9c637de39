"""Identifier normalisation, junk denylist, keyed hashing and masking."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from services.stitcher.core.hashed_identifiers import IdentifierHasher, mint_for
from services.stitcher.core.identifiers import (
    IDENTIFIER_TYPES,
    Denylist,
    id_key,
    is_junk,
    lookup_key,
    mask,
    mint_customer_id,
    normalise,
    strongest,
)
from services.stitcher.settings import StitcherSettings

pytestmark = pytest.mark.unit


def test_identifier_types_are_the_contract_types() -> None:
    assert IDENTIFIER_TYPES == (
        "customer_id",
        "account_id",
        "email",
        "phone",
        "device_id",
        "cookie_id",
        "loyalty_id",
        "social_handle",
    )


@pytest.mark.parametrize(
    ("id_type", "raw", "expected"),
    [
        ("email", "  Ana.Silva@Example.com ", "ana.silva@example.com"),
        ("email", "not-an-email", None),
        ("email", "a@b@c", None),
        ("phone", "07700 900123", "+447700900123"),
        ("phone", "+44 20 7946 0958", "+442079460958"),
        ("phone", "(020) 7946-0958", "+442079460958"),
        ("phone", "12", None),
        ("phone", "call me", None),
        ("cookie_id", " ck_9f2a\t", "ck_9f2a"),
        ("account_id", "ACC-1001", "ACC-1001"),
        ("social_handle", " @Ana_S ", "ana_s"),
        ("passport", "X123", None),
    ],
)
def test_normalise(id_type: str, raw: str, expected: str | None) -> None:
    assert normalise(id_type, raw, phone_region="GB") == expected


def test_phone_region_applies_to_national_numbers() -> None:
    assert normalise("phone", "(415) 555-2671", phone_region="US") == "+14155552671"


@pytest.mark.parametrize(
    ("id_type", "value"),
    [
        ("cookie_id", ""),
        ("cookie_id", "null"),
        ("device_id", "UNDEFINED"),
        ("account_id", "None"),
        ("customer_id", "0"),
        ("loyalty_id", "unknown"),
        ("email", "test@example.com"),
        ("email", "noreply@shop.co.uk"),
        ("email", "ana@mail.invalid"),
        ("phone", "+447777777777"),
        ("phone", "+44000000000"),
        ("email", "\x00@\x00"),
        ("account_id", "---"),
        ("cookie_id", "\u200b\t"),
        ("social_handle", "_"),
        ("device_id", "..."),
    ],
)
def test_junk_values_are_never_stitched_on(id_type: str, value: str) -> None:
    assert is_junk(id_type, value)


@pytest.mark.parametrize(
    ("id_type", "value"),
    [
        ("email", "ana.silva@example.com"),
        ("email", "contest@example.com"),
        ("phone", "+447700900123"),
        ("cookie_id", "ck_9f2a"),
        ("customer_id", "10"),
        ("social_handle", "ana_ü"),
        ("account_id", "名前"),
    ],
)
def test_real_values_are_not_junk(id_type: str, value: str) -> None:
    assert not is_junk(id_type, value)


def test_denylist_is_configurable() -> None:
    deny = Denylist.with_extra(" shared-kiosk ,POS-1")
    assert is_junk("device_id", "shared-kiosk", deny)
    assert is_junk("device_id", "pos-1", deny)
    assert not is_junk("device_id", "shared-kiosk")


def test_id_key_is_hmac_sha256_of_type_and_value() -> None:
    expected = hmac.new(b"k", b"email:ana@example.com", hashlib.sha256).hexdigest()
    assert id_key(b"k", "email", "ana@example.com") == f"email:{expected}"
    assert id_key(b"other", "email", "ana@example.com") != id_key(b"k", "email", "ana@example.com")
    assert id_key(b"k", "cookie_id", "x") != id_key(b"k", "device_id", "x")


@pytest.mark.parametrize(
    ("id_type", "value", "masked"),
    [
        ("phone", "+442079460958", "•••• 0958"),
        ("email", "ana.silva@example.com", "a***@example.com"),
        ("cookie_id", "ck_9f2a11", "ck_9…"),
        ("account_id", "A12", "A…"),
    ],
)
def test_mask_hides_the_value(id_type: str, value: str, masked: str) -> None:
    assert mask(id_type, value) == masked


def test_lookup_key_matches_what_the_stitcher_stores() -> None:
    settings = StitcherSettings.model_validate(
        {"JOURNEYS_HMAC_SECRET": "s3cret", "JOURNEYS_JUNK_IDENTIFIERS": "kiosk"}
    )
    assert lookup_key(settings, "phone", "07700 900123") == id_key(b"s3cret", "phone", "+447700900123")
    assert lookup_key(settings, "email", "test@example.com") is None
    assert lookup_key(settings, "device_id", "kiosk") is None
    assert lookup_key(settings, "phone", "nonsense") is None
    assert lookup_key(settings, "passport", "X") is None


def test_minting_is_deterministic_and_uses_the_strongest_identifier() -> None:
    keys = ["cookie_id:" + "a" * 64, "email:" + "f" * 64, "email:" + "e" * 64]
    assert strongest(keys) == "email:" + "e" * 64
    cid = mint_customer_id(strongest(keys))
    assert cid == mint_customer_id("email:" + "e" * 64)
    assert cid.startswith("c_") and len(cid) == 18 and int(cid[2:], 16) >= 0


def test_settings_reject_bad_limits() -> None:
    with pytest.raises(ValueError, match="bad merge limit"):
        StitcherSettings.model_validate({"JOURNEYS_MERGE_LIMITS": "email=0"})
    assert StitcherSettings.model_validate({"JOURNEYS_MERGE_LIMITS": "email=9"}).limits["email"] == 9


def test_the_identifier_cache_is_an_lru_a_hit_keeps_an_entry() -> None:
    hasher = IdentifierHasher(b"k", "GB", cache_size=2)
    for raw in ("a1", "b1", "a1", "c1", "a1", "b1"):
        hasher.usable({"cookie_id": raw})
    # a1 was used again before c1 came, so c1 evicted b1, not a1: only the second b1 misses again
    # (a FIFO cache would also have evicted a1 and missed 5 times).
    info = hasher.cache_info()
    assert (info.misses, info.hits, info.currsize) == (4, 2, 2) and len(hasher) == 2


def test_usable_identifiers_come_in_contract_order_with_their_mint() -> None:
    hasher = IdentifierHasher(b"k", "GB")
    idents = hasher.usable(
        {"cookie_id": "ck_1", "phone": "07700 900123", "email": "Ana@Example.com", "device_id": "null"}
    )
    assert [i.id_type for i in idents] == ["email", "phone", "cookie_id"]  # the junk device is left out
    assert mint_for(idents) == mint_customer_id(strongest([i.key for i in idents]))
    assert [i.device for i in idents] == ["", "", idents[2].key[len("cookie_id:") :][:32]]
    assert hasher.usable({"email": "test@example.com"}) == []
