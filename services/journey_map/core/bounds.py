"""Bounded dimensions of the map: every value a counter can be keyed by comes from a known list.

Journey types and stages come from the journey definitions, personas, departments and emotions from
configured lists, channels from the channel_event.v1 contract; anything else is counted under ``other``.
So the number of counters is bounded whatever the input says (a typo in a channel system cannot create
a new series), and the map's columns are exactly the stages an analyst defined.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import get_args

from services.common.records import Channel
from services.common.vocabulary import DEFAULT_PERSONAS
from services.gap_detector.core.definitions import Definitions

OTHER = "other"
CHANNELS: tuple[str, ...] = tuple(get_args(Channel))
ALERT_TYPES = (
    "channel_switch",
    "device_switch",
    "department_handoff",
    "repeat_contact",
    "stall",
    "dropoff_spike",
)
DEFAULT_DEPARTMENTS = (
    "sales",
    "billing",
    "verification",
    "customer_care",
    "credit",
    "tech_support",
    "field_ops",
)
DEFAULT_EMOTIONS = (
    "frustrated",
    "angry",
    "confused",
    "anxious",
    "neutral",
    "satisfied",
    "happy",
    "delighted",
)


@dataclass(frozen=True)
class Bounds:
    """What each dimension may hold. ``stages[j]`` lists journey ``j``'s stages in order, then its
    terminal stages (sorted); ``index`` gives a stage's position for "forward" (conversion) tests."""

    stages: dict[str, tuple[str, ...]]
    terminal: dict[str, frozenset[str]]
    personas: frozenset[str]
    departments: frozenset[str]
    emotions: frozenset[str]
    channels: frozenset[str] = frozenset(CHANNELS)
    index: dict[tuple[str, str], int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        idx = {(j, s): i for j, names in self.stages.items() for i, s in enumerate(names)}
        object.__setattr__(self, "index", idx)

    @classmethod
    def from_definitions(
        cls,
        defs: Definitions,
        personas: Iterable[str] = DEFAULT_PERSONAS,
        departments: Iterable[str] = DEFAULT_DEPARTMENTS,
        emotions: Iterable[str] = DEFAULT_EMOTIONS,
    ) -> Bounds:
        stages = {
            name: (*(s.name for s in jt.stages), *sorted(jt.terminal)) for name, jt in defs.journeys.items()
        }
        terminal = {name: frozenset(jt.terminal) for name, jt in defs.journeys.items()}
        stages[OTHER], terminal[OTHER] = (OTHER,), frozenset()
        return cls(stages, terminal, frozenset(personas), frozenset(departments), frozenset(emotions))

    def journey(self, value: str | None) -> str:
        return value if value in self.stages else OTHER

    def stage(self, journey: str, value: str | None) -> str:
        """The stage within an already bounded journey type (``other`` for an undefined one)."""
        return value if value is not None and (journey, value) in self.index else OTHER

    def channel(self, value: str | None) -> str:
        return value if value in self.channels else OTHER

    def persona(self, value: str | None) -> str:
        return value if value in self.personas else OTHER

    def department(self, value: str | None) -> str | None:
        if not value:
            return None
        return value if value in self.departments else OTHER

    def emotion(self, value: str | None) -> str | None:
        if not value:
            return None
        return value if value in self.emotions else OTHER

    def is_terminal(self, journey: str, stage: str) -> bool:
        return stage in self.terminal.get(journey, frozenset())

    def is_forward(self, journey: str, src: str, dst: str) -> bool:
        """``dst`` comes after ``src`` in the journey's stage order (terminal stages come last)."""
        a, b = self.index.get((journey, src)), self.index.get((journey, dst))
        return a is not None and b is not None and b > a and src != OTHER
