"""The id_keys a raw identifier may be stored under while the HMAC key is being rotated.

Current key first, then every key in JOURNEYS_HMAC_PREVIOUS_SECRETS (newest first): a customer stitched
under an old key and not yet re-keyed (`python -m services.api.rekey`) is still found. Pure.
"""

from __future__ import annotations

from services.common.settings import CommonSettings
from services.stitcher.core.identifiers import IDENTIFIER_TYPES, Denylist, id_key, is_junk, normalise


def lookup_keys(settings: CommonSettings, id_type: str, raw: str) -> list[str]:
    """Every candidate id_key, current key first; [] when the identifier is unusable or junk."""
    if id_type not in IDENTIFIER_TYPES:
        return []
    value = normalise(id_type, raw, phone_region=settings.phone_region)
    if value is None or is_junk(id_type, value, Denylist.from_settings(settings)):
        return []
    secrets = [settings.secret_bytes(), *settings.previous_secret_bytes()]
    return list(dict.fromkeys(id_key(s, id_type, value) for s in secrets))
