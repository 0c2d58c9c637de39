"""What the demo shows: counters fed by the output topics, and the rich renderable of them.

``LiveStats`` is plain data updated from one consumer thread and read by the renderer; the counters
are ints and a bounded deque, so a torn read shows at worst a number one refresh old.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from rich.console import Group
from rich.panel import Panel
from rich.table import Table


@dataclass
class LiveStats:
    started: float = field(default_factory=time.monotonic)
    total: int = 0
    sent: int = 0
    stitched: int = 0
    customers: set[str] = field(default_factory=set)
    journeys: Counter[str] = field(default_factory=Counter)
    merges: int = 0
    conflicts: int = 0
    alerts: Counter[str] = field(default_factory=Counter)
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=12))
    _rate_marks: deque[tuple[float, int, int]] = field(default_factory=lambda: deque(maxlen=20))

    def on_record(self, topic_kind: str, value: bytes) -> None:
        try:
            doc = orjson.loads(value)
        except orjson.JSONDecodeError:
            return
        if not isinstance(doc, dict):
            return
        if topic_kind == "stitched":
            self.stitched += 1
            self.customers.add(str(doc.get("customer_id")))
            stage = (doc.get("journey") or {}).get("stage")
            if stage:
                self.journeys[f"{doc['journey'].get('type')}/{stage}"] += 1
        elif topic_kind == "merges":
            if doc.get("kind") == "conflict":
                self.conflicts += 1
            else:
                self.merges += 1
        elif topic_kind == "alerts":
            self.alerts[str(doc.get("type"))] += 1
            self.recent.appendleft(doc)

    @property
    def people(self) -> int:
        """Customers seen, counting each merged pair once (a merge's loser id was seen too)."""
        return max(0, len(self.customers) - self.merges)

    def rates(self) -> tuple[float, float]:
        """(sent/s, stitched/s) over the last few seconds."""
        now = time.monotonic()
        self._rate_marks.append((now, self.sent, self.stitched))
        t0, s0, k0 = self._rate_marks[0]
        span = max(now - t0, 1e-6)
        return (self.sent - s0) / span, (self.stitched - k0) / span


def render(stats: LiveStats, urls: list[tuple[str, str]], note: str) -> Group:
    sent_rate, stitched_rate = stats.rates()
    head = Table.grid(padding=(0, 3))
    head.add_row(
        f"[bold]sent[/] {stats.sent}/{stats.total}  ({sent_rate:,.0f}/s)",
        f"[bold]stitched[/] {stats.stitched}  ({stitched_rate:,.0f}/s)",
        f"[bold]customers[/] {stats.people}",
        f"[bold]merges[/] {stats.merges}  [dim]conflicts {stats.conflicts}[/]",
    )
    kinds = Table("alert type", "count", box=None)
    for kind, n in stats.alerts.most_common():
        kinds.add_row(kind, str(n))
    stages = Table("journey/stage", "events", box=None)
    for name, n in stats.journeys.most_common(8):
        stages.add_row(name, str(n))
    side = Table.grid(padding=(0, 4))
    side.add_row(kinds, stages)
    recent = Table("event time", "type", "severity", "what", box=None, expand=True)
    for a in list(stats.recent):
        sev = a.get("severity", "")
        colour = {"critical": "bold red", "high": "red", "medium": "yellow"}.get(sev, "dim")
        recent.add_row(
            str(a.get("occurred_at", ""))[:19],
            str(a.get("type")),
            f"[{colour}]{sev}[/]",
            str(a.get("title") or a.get("customer_id") or ""),
        )
    links = "  ".join(f"{name}: [link={url}]{url}[/link]" for name, url in urls)
    return Group(
        Panel(head, title="journeys demo", subtitle=note),
        Panel(side, title="alerts by type · busiest journey stages"),
        Panel(recent, title="latest alerts"),
        links,
    )


def summary_line(stats: LiveStats) -> str:
    alerts = ", ".join(f"{k} {v}" for k, v in sorted(stats.alerts.items())) or "none yet"
    return (
        f"sent {stats.sent}/{stats.total}, stitched {stats.stitched}, customers {stats.people}, "
        f"merges {stats.merges}, alerts: {alerts}"
    )
