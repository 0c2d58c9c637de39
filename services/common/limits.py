"""Limits shared by Python and the Lua scripts: one value each, defined here and nowhere else.

Before this module the alias-hop limit was 64 in the stitcher's script, 16 in the detector's load script,
8 in the API and unbounded in Python: a chain of 10 aliases was followed by the stitcher and read as a
dead end by the API. Each limit below is the single source of truth.

Scripts never hard-code them: the adapter that calls a script passes the value in ARGV (a script cannot
import Python, and a literal in Lua drifts from this file unnoticed). A script documents the ARGV slot it
reads a limit from; a test of the adapter checks the value it passes is the one here.

Python code imports the names (``from services.common.limits import MAX_ALIAS_HOPS``), and contract
limits that JSON Schema states too (``MAX_IDENTIFIERS_PER_EVENT``) are checked against ``schemas/`` by
``tests/unit/contracts/test_vocabulary.py``.
"""

from __future__ import annotations

from typing import Final

# Alias chains (a merged-away customer id -> the one it was merged into). The stitcher shortens chains as
# it merges, so real chains are 1-2 hops; a reader that follows more than this has met a cycle or a
# corrupt key and stops there (answering the id it reached) rather than looping inside Redis.
MAX_ALIAS_HOPS: Final = 64

# Merged-away customers whose state one detector load folds into the survivor, per customer asked for;
# the rest are folded by the next event of that customer (bounded work per script call).
MAX_LOSERS_PER_LOAD: Final = 64

# Identifiers on one channel event (channel_event.v1 ``identifiers`` maxProperties), known and open types
# together: it bounds the hashing work per event.
MAX_IDENTIFIERS_PER_EVENT: Final = 16

# Length of an identifier type or channel name (the open-enum pattern ^[a-z][a-z0-9_]{0,31}$ of
# channel_event.v1); it also bounds a metric label or key prefix built from one.
MAX_OPEN_NAME_LENGTH: Final = 32

ALL: Final = {
    "MAX_ALIAS_HOPS": MAX_ALIAS_HOPS,
    "MAX_LOSERS_PER_LOAD": MAX_LOSERS_PER_LOAD,
    "MAX_IDENTIFIERS_PER_EVENT": MAX_IDENTIFIERS_PER_EVENT,
    "MAX_OPEN_NAME_LENGTH": MAX_OPEN_NAME_LENGTH,
}
