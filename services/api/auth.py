"""Who may call what: bearer tokens configured as SHA-256 hashes, each with a name and a role.

``JOURNEYS_API_TOKENS=name:role:sha256hex,...``: the API never holds a token in plain text, only its hash,
so the configuration (compose files, systemd units, a secrets store dump) gives nobody a working token.
Tokens are random (``python -m services.api.tokens NAME ROLE`` makes one), so an unsalted fast hash is
enough: there is no dictionary to try. The name is what the audit trail records as "who".

Roles: ``agent`` (every read: lookups, journeys, alerts, the journey map, /metrics when protected, the
live page's events; and the one change that is an agent's job: acknowledging and resolving alerts) and
``admin`` (everything an agent may, plus erasure and any other change: every other method but GET/HEAD,
so a new route that changes something is closed to agents until someone decides otherwise, here, in
AGENT_CHANGES). Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

ROLES = ("agent", "admin")  # each includes the ones before it
MIN_TOKEN_CHARS = 24
_HEX64 = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")

READS = frozenset({"GET", "HEAD"})  # what an agent may do; any other method changes something
# The changes an agent may make (method, route template): handling the alerts of the customer on the line.
AGENT_CHANGES = frozenset(
    {("POST", "/api/v1/alerts/{alert_id}/acknowledge"), ("POST", "/api/v1/alerts/{alert_id}/resolve")}
)


@dataclass(frozen=True)
class Caller:
    name: str
    role: str

    def may(self, needed: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(needed)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_tokens(text: str) -> dict[str, Caller]:
    """``name:role:sha256hex,...`` -> {hash: Caller}; ValueError naming the bad entry (never a hash)."""
    table: dict[str, Caller] = {}
    names: set[str] = set()
    for n, entry in enumerate(filter(None, (e.strip() for e in text.split(","))), start=1):
        parts = entry.split(":")
        if len(parts) != 3:
            raise ValueError(f"entry {n} of JOURNEYS_API_TOKENS: use name:role:sha256hex")
        name, role, digest = parts[0].strip(), parts[1].strip(), parts[2].strip().lower()
        if not _NAME.fullmatch(name):
            raise ValueError(f"entry {n} of JOURNEYS_API_TOKENS: a name of 1-64 of A-Z a-z 0-9 . _ @ -")
        if role not in ROLES:
            raise ValueError(
                f"entry {n} ({name}) of JOURNEYS_API_TOKENS: role must be one of {', '.join(ROLES)}"
            )
        if not _HEX64.fullmatch(digest):
            raise ValueError(
                f"entry {n} ({name}) of JOURNEYS_API_TOKENS: the hash must be 64 hex digits "
                "(python -m services.api.tokens makes one)"
            )
        if name in names or digest in table:
            raise ValueError(f"entry {n} ({name}) of JOURNEYS_API_TOKENS: a name or token used twice")
        names.add(name)
        table[digest] = Caller(name, role)
    return table


def needed_role(method: str, route: str = "") -> str:
    """The least role that may call ``method`` on ``route`` (a route template, never a concrete path)."""
    method = method.upper()
    return "agent" if method in READS or (method, route) in AGENT_CHANGES else "admin"


def bearer(header: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; None for anything else or an empty one."""
    scheme, _, token = header.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


class TokenTable:
    def __init__(self, table: dict[str, Caller]) -> None:
        self._table = table

    def caller(self, token: str | None) -> Caller | None:
        """The caller a token belongs to. A dict probe on the token's hash: timing reveals nothing an
        attacker can steer (they would need tokens whose SHA-256 shares a prefix with a real one's)."""
        if not token:
            return None
        return self._table.get(token_hash(token))

    def __len__(self) -> int:
        return len(self._table)
