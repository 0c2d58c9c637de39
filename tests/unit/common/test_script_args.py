"""Every Lua script's call is a typed signature whose KEYS and ARGV names are the ones the script's header
documents, in the same order; shared limits reach scripts as named arguments, never as Lua literals."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis.asyncio import Redis

from services.api import script_calls as api_calls
from services.common.keys import Keys
from services.common.limits import MAX_ALIAS_HOPS, MAX_LOSERS_PER_LOAD
from services.common.script_args import Signature
from services.gap_detector import script_calls as detector_calls
from services.gap_detector.store import DetectorStore
from services.journey_map import script_calls as map_calls
from services.stitcher.adapters import script_calls as stitcher_calls
from services.stitcher.adapters.redis_store import RedisStitchStore
from services.stitcher.adapters.script_calls import IdentityCall
from services.stitcher.settings import parse_limits

pytestmark = pytest.mark.unit

SERVICES = Path(__file__).resolve().parents[3] / "services"
MODULES = [api_calls, detector_calls, map_calls, stitcher_calls]
NOT_YET: set[str] = set()  # every script has a signature; a new script gets one, not a line here


def _script_path(sig: type[Signature]) -> str:
    return str(Path(*sig.PACKAGE.split(".")[1:], sig.SCRIPT))


SIGNATURES = [
    c
    for m in MODULES
    for c in vars(m).values()
    if isinstance(c, type)
    and issubclass(c, Signature)
    and c is not Signature
    and _script_path(c) not in NOT_YET
]


@pytest.mark.parametrize("sig", SIGNATURES, ids=lambda s: s.__name__)
def test_header_names_the_signature_fields_in_order(sig: type[Signature]) -> None:
    keys, argv = sig.documented()
    assert keys == sig.KEYS, f"{sig.SCRIPT}: header KEYS {keys} != {sig.__name__}.KEYS {sig.KEYS}"
    assert argv == sig.ARGV, f"{sig.SCRIPT}: header ARGV {argv} != {sig.__name__}.ARGV {sig.ARGV}"


@pytest.mark.parametrize("sig", SIGNATURES, ids=lambda s: s.__name__)
def test_every_named_field_exists(sig: type[Signature]) -> None:
    for name in (*sig.KEYS, *sig.ARGV):
        assert hasattr(sig, name), f"{sig.__name__}.{name}"


def test_every_script_has_a_signature() -> None:
    scripts = {str(p.relative_to(SERVICES)) for p in SERVICES.rglob("*.lua")}
    covered = {_script_path(s) for s in SIGNATURES}
    assert covered <= scripts
    assert scripts - covered == NOT_YET & scripts


@dataclass(frozen=True, slots=True)
class _Example(Signature):
    PACKAGE = "services.api"
    SCRIPT = "lua/resolve.lua"
    KEYS = ("one", "many")
    ARGV = ("count", "items", "blob", "none")

    one: str
    many: list[str]
    items: tuple[str | int, ...]
    blob: bytes
    none: int | None

    @property
    def count(self) -> int:
        return len(self.many)


def test_call_spreads_lists_and_keeps_scalars_in_order() -> None:
    keys, argv = _Example("k", ["a", "b"], ("t", 1), b"\x01", None).call()
    assert keys == ["k", "a", "b"]
    assert argv == [2, "t", 1, b"\x01", ""]  # None is sent as '' (the scripts' "none")


LIMIT_LITERAL = re.compile(r"for\s+_\s*=\s*1\s*,\s*\d+\s+do|<\s*(16|64)\b")


@pytest.mark.parametrize("sig", SIGNATURES, ids=lambda s: s.__name__)
def test_no_limit_is_a_lua_literal(sig: type[Signature]) -> None:
    body = "\n".join(line for line in sig.source().splitlines() if not line.lstrip().startswith("--"))
    assert not LIMIT_LITERAL.search(body), f"{sig.SCRIPT}: a limit written in Lua (pass it in ARGV)"


def test_the_stitcher_passes_the_shared_limits() -> None:
    store = RedisStitchStore(Redis(), Keys("t"), parse_limits(""), 100, 86_400_000)  # no I/O until called
    call = store.identity_call([], 0)
    assert call.max_alias_hops == MAX_ALIAS_HOPS
    assert call.argv()[IdentityCall.ARGV.index("max_alias_hops")] == MAX_ALIAS_HOPS


def test_the_detector_passes_the_shared_limits() -> None:
    store = DetectorStore(Redis(), Keys("t"), 86_400_000, 10)  # no I/O until called
    _, argv = store._resolve_call("c_1", [["c_1", ""]])
    names = detector_calls.ResolveCall.ARGV
    assert argv[names.index("max_alias_hops")] == MAX_ALIAS_HOPS
    assert argv[names.index("max_losers")] == MAX_LOSERS_PER_LOAD
