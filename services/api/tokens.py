"""``python -m services.api.tokens NAME ROLE``: a new random API token and its JOURNEYS_API_TOKENS entry.

The token goes to the person or system that will use it (printed once, on stdout); only the entry, which
holds its SHA-256, goes into the configuration. Append it to JOURNEYS_API_TOKENS with a comma.
"""

from __future__ import annotations

import argparse
import secrets
import sys

from services.api.auth import ROLES, parse_tokens, token_hash


def new_entry(name: str, role: str) -> tuple[str, str]:
    """(token, 'name:role:sha256hex'); ValueError for a bad name or role."""
    token = secrets.token_urlsafe(32)  # 43 characters, 256 bits
    entry = f"{name}:{role}:{token_hash(token)}"
    parse_tokens(entry)
    return token, entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.api.tokens",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("name", help="who uses it (the audit trail's 'who'): A-Z a-z 0-9 . _ @ -")
    parser.add_argument("role", choices=ROLES)
    args = parser.parse_args(argv)
    try:
        token, entry = new_entry(args.name, args.role)
    except ValueError as exc:
        print(f"tokens: error: {exc}", file=sys.stderr)
        return 2
    print(f"token (give it to {args.name}; it is not stored anywhere): {token}")
    print(f"JOURNEYS_API_TOKENS entry: {entry}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
