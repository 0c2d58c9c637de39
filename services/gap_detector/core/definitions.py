"""Journey definitions: the declarative file (YAML or JSON) the detector and the simulator load.

The file is validated against ``schemas/journey_definitions.v1.json``. A bad file raises a
UserError naming the line and the field, found by composing the YAML node tree (JSON is YAML) and
walking each violation's instance path to its node's start mark.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from services.common import contracts
from services.common.errors import UserError
from services.common.timeutil import parse_duration_ms

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "common" / "default_journeys.yaml"

# Used when a file has no ``defaults`` block, or leaves some of its fields out.
BUILTIN_DEFAULTS: dict[str, Any] = {
    "channel_switch_window": "30m",
    "device_switch_window": "30m",
    "handoff_window": "2h",
    "repeat_contact_count": 3,
    "repeat_contact_window": "7d",
    "default_stall_sla": "2d",
    "dropoff_factor": 2.0,
    "dropoff_min_volume": 20,
    "dropoff_baseline_minutes": 30,
}


@dataclass(frozen=True)
class Thresholds:
    channel_switch_window_ms: int
    device_switch_window_ms: int
    handoff_window_ms: int
    repeat_contact_count: int
    repeat_contact_window_ms: int
    default_stall_sla_ms: int
    dropoff_factor: float
    dropoff_min_volume: int
    dropoff_baseline_minutes: int


@dataclass(frozen=True)
class Stage:
    name: str
    sla_ms: int
    importance: float


@dataclass(frozen=True)
class JourneyType:
    name: str
    stages: tuple[Stage, ...]
    terminal: frozenset[str]
    thresholds: Thresholds


@dataclass(frozen=True)
class Definitions:
    journeys: Mapping[str, JourneyType]
    assisted: frozenset[str]
    self_service: frozenset[str]
    importance: Mapping[str, float]
    defaults: Thresholds
    _stages: Mapping[tuple[str, str], Stage] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # stage() runs for every event on a journey: a dict, not a scan of the stage list.
        index = {(j.name, s.name): s for j in self.journeys.values() for s in j.stages}
        object.__setattr__(self, "_stages", MappingProxyType(index))

    def thresholds(self, journey_type: str | None) -> Thresholds:
        """The journey type's thresholds, or the defaults for None / an unknown type."""
        jt = self.journeys.get(journey_type) if journey_type else None
        return jt.thresholds if jt else self.defaults

    def stage(self, journey_type: str, stage: str) -> Stage | None:
        return self._stages.get((journey_type, stage))

    def sla_ms(self, journey_type: str, stage: str) -> int:
        """The stage's SLA, else the journey type's (or global) default stall SLA."""
        st = self.stage(journey_type, stage)
        return st.sla_ms if st else self.thresholds(journey_type).default_stall_sla_ms

    def is_terminal(self, journey_type: str, stage: str) -> bool:
        jt = self.journeys.get(journey_type)
        return jt is not None and stage in jt.terminal


def _thresholds(raw: Mapping[str, Any], base: Mapping[str, Any]) -> Thresholds:
    merged = {**base, **raw}
    return Thresholds(
        channel_switch_window_ms=parse_duration_ms(merged["channel_switch_window"]),
        device_switch_window_ms=parse_duration_ms(merged["device_switch_window"]),
        handoff_window_ms=parse_duration_ms(merged["handoff_window"]),
        repeat_contact_count=int(merged["repeat_contact_count"]),
        repeat_contact_window_ms=parse_duration_ms(merged["repeat_contact_window"]),
        default_stall_sla_ms=parse_duration_ms(merged["default_stall_sla"]),
        dropoff_factor=float(merged["dropoff_factor"]),
        dropoff_min_volume=int(merged["dropoff_min_volume"]),
        dropoff_baseline_minutes=int(merged["dropoff_baseline_minutes"]),
    )


def build_definitions(data: Mapping[str, Any]) -> Definitions:
    """Definitions from an already validated document."""
    base = {**BUILTIN_DEFAULTS, **data.get("defaults", {})}
    defaults = _thresholds({}, base)
    journeys: dict[str, JourneyType] = {}
    for name, raw in data["journeys"].items():
        thresholds = _thresholds(raw.get("thresholds", {}), base)
        stages = tuple(
            Stage(
                name=s["name"],
                sla_ms=parse_duration_ms(s["sla"]) if "sla" in s else thresholds.default_stall_sla_ms,
                importance=float(s.get("importance", 1.0)),
            )
            for s in raw["stages"]
        )
        journeys[name] = JourneyType(name, stages, frozenset(raw["terminal"]), thresholds)
    return Definitions(
        journeys=MappingProxyType(journeys),
        assisted=frozenset(data["channels"]["assisted"]),
        self_service=frozenset(data["channels"]["self_service"]),
        importance=MappingProxyType({k: float(v) for k, v in data.get("touchpoint_importance", {}).items()}),
        defaults=defaults,
    )


def _line_of(root: yaml.Node, path: Sequence[str | int]) -> int:
    """1-based line of the deepest node along a JSON-pointer-like path; a mapping entry is named by
    its key's line, which is where a reader looks for 'journeys/support'."""
    node, mark = root, root.start_mark
    for part in path:
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if pair is None:
                break
            mark, node = pair[0].start_mark, pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            mark = node.start_mark
        else:
            break
    return int(mark.line) + 1


def _semantic_errors(data: Mapping[str, Any]) -> list[tuple[list[str | int], str]]:
    """Rules JSON Schema cannot say: a stage name is not also terminal, channel lists do not overlap."""
    found: list[tuple[list[str | int], str]] = []
    overlap = set(data["channels"]["assisted"]) & set(data["channels"]["self_service"])
    if overlap:
        found.append((["channels", "self_service"], f"both assisted and self-service: {sorted(overlap)}"))
    for name, raw in data["journeys"].items():
        names = [s["name"] for s in raw["stages"]]
        for i, stage in enumerate(names):
            if stage in raw["terminal"]:
                found.append((["journeys", name, "stages", i, "name"], f"stage {stage!r} is also terminal"))
            if stage in names[:i]:
                found.append((["journeys", name, "stages", i, "name"], f"duplicate stage {stage!r}"))
    return found


def parse_definitions(text: str, source: str = "<definitions>") -> Definitions:
    """Parse and validate a definitions document; a problem raises UserError naming line and field."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise UserError(f"{where}: not valid YAML/JSON: {getattr(exc, 'problem', exc)}") from None
    if root is None or not isinstance(data, dict):
        raise UserError(f"{source}:1: must be a mapping with schema_version, channels and journeys")
    problems: list[tuple[list[str | int], str]] = [
        (list(err.instance_path), err.message)
        for err in contracts.validator(contracts.JOURNEY_DEFINITIONS).iter_errors(data)
    ]
    if not problems:
        problems = _semantic_errors(data)
    if problems:
        path, message = problems[0]
        line = _line_of(root, path)
        field = "/".join(str(p) for p in path) or "(root)"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise UserError(f"{source}:{line}: field {field}: {message}{more}")
    return build_definitions(data)


def load_definitions(path: str | Path | None = None) -> Definitions:
    """Load the definitions file (None: the bundled default_journeys.yaml)."""
    file = Path(path) if path is not None else DEFAULT_PATH
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read journey definitions {file}: {exc.strerror or exc}") from None
    return parse_definitions(text, str(file))
