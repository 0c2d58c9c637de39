"""Script signatures: one typed structure per Lua script call, naming its KEYS and ARGV.

A Lua script reads ``KEYS[i]`` and ``ARGV[i]`` by position. Before this module each adapter built those
lists by hand, and patched entries by index (``args[6] = now_ms``), so a slot added to a script shifted
every later one silently. Now a script's call is a frozen dataclass (a :class:`Signature`) whose fields
carry names: ``KEYS`` and ``ARGV`` list, in script order, the fields that make up each list, and
:meth:`Signature.call` builds both lists in one place. A field holding a list or tuple is spread (a run of
keys or arguments, e.g. one key per customer); any other value is one entry, ``None`` being sent as ''
(what the scripts read as "none").

The script's header documents the same names, one line per field, in order::

    -- KEYS[1..NI] identifier_keys: the batch's identifier keys ...
    -- ARGV[7] now_ms: created_ms of new customers

``tests/unit/common/test_script_args.py`` reads every script's header and checks that its names and their
order are the signature's, so a slot added on one side only fails a unit test rather than a journey.
Shared limits (``services.common.limits``) reach a script as named ARGV fields, never as Lua literals.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib.resources import files
from typing import Any, ClassVar

Call = tuple[Sequence[Any], Sequence[Any]]  # (keys, args), as services.common.scripts.Script takes them

# One documented field of a script's header: "-- KEYS[...] name:" or "-- ARGV[...] name:".
HEADER_FIELD = re.compile(r"^--\s*(KEYS|ARGV)\[[^\]]*\]\s+([a-z_][a-z0-9_]*):", re.MULTILINE)


def _spread(sig: Signature, names: tuple[str, ...]) -> list[Any]:
    out: list[Any] = []
    for name in names:
        value = getattr(sig, name)
        if isinstance(value, (list, tuple)):
            out.extend(value)
        else:
            out.append("" if value is None else value)
    return out


class Signature:
    """Base of a script's typed call. Subclasses are ``@dataclass(frozen=True, slots=True)`` and set
    ``PACKAGE`` and ``SCRIPT`` (where the .lua lives) and ``KEYS``/``ARGV`` (field or property names, in
    the script's order)."""

    __slots__ = ()
    PACKAGE: ClassVar[str]
    SCRIPT: ClassVar[str]
    KEYS: ClassVar[tuple[str, ...]]
    ARGV: ClassVar[tuple[str, ...]] = ()

    def keys(self) -> list[Any]:
        return _spread(self, self.KEYS)

    def argv(self) -> list[Any]:
        return _spread(self, self.ARGV)

    def call(self) -> Call:
        """(KEYS, ARGV) as the script reads them."""
        return _spread(self, self.KEYS), _spread(self, self.ARGV)

    @classmethod
    def source(cls) -> str:
        return files(cls.PACKAGE).joinpath(cls.SCRIPT).read_text()

    @classmethod
    def documented(cls) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The KEYS and ARGV field names the script's header documents, in order."""
        found = HEADER_FIELD.findall(cls.source())
        keys = tuple(name for kind, name in found if kind == "KEYS")
        return keys, tuple(name for kind, name in found if kind == "ARGV")
