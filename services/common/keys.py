"""The Redis key layout: the one place every service (and every Lua script, via ARGV) takes names from.

Hash tags make the layout ready for Redis Cluster:
- ``{<p>:idg}``  the identity graph. One slot, so identity resolution and merges are one atomic script.
- ``{<p>:c:<cid>}`` everything about one customer (journey, summary, detector state, open alerts),
  so per-customer writes are single-slot.
- ``{<p>:det}`` / ``{<p>:alerts}`` detector-wide indexes (timer wheel, recent alerts).
Every script touches the keys of one hash tag only, so the same code runs on a single Redis and on Redis
Cluster (``REDIS_URL=redis+cluster://…``); adapters group a batch's per-customer work by slot. Values are
versioned JSON (orjson), never pickle.
Identifier keys are ``<type>:<hex HMAC-SHA256(secret, "<type>:<normalised value>")>``: no raw
e-mail or phone ever appears in a key or a value.
Nothing lives forever: a customer's journey and identity-graph keys share one TTL, JOURNEYS_RETENTION after
its last write, re-armed together (docs/stitcher.md, "Retention"); merge outcomes keep a week.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = "jr"

    # -- identity graph (owner: stitcher) ------------------------------------------------------
    @property
    def idg(self) -> str:
        """Common hash-tagged stem of the identity graph."""
        return f"{self.prefix}:{{{self.prefix}:idg}}"

    def identifier(self, id_key: str) -> str:
        """STRING id_key -> customer_id."""
        return f"{self.idg}:id:{id_key}"

    def customer(self, cid: str) -> str:
        """HASH first_seen_ms, created_ms, n:<type> (identifier counts per type)."""
        return f"{self.idg}:cust:{cid}"

    def customer_ids(self, cid: str) -> str:
        """SET of the id_keys linked to a customer."""
        return f"{self.idg}:ids:{cid}"

    def alias(self, cid: str) -> str:
        """STRING loser customer_id -> survivor customer_id (merged away)."""
        return f"{self.idg}:alias:{cid}"

    def aliases_of(self, cid: str) -> str:
        """SET of customer ids merged into cid (for erase and the API's 'aliases')."""
        return f"{self.idg}:aliases:{cid}"

    def merge_outcome(self, event_id: str) -> str:
        """STRING (TTL) the merges/conflicts an event caused, replayed on redelivery so no record is lost."""
        return f"{self.idg}:out:{event_id}"

    def evidence(self, cid: str) -> str:
        """HASH event_id -> '<rule>|<occurred ms>|<recorded ms>|<via keys>|<new keys>|<merged customers>'
        (lists comma-separated): every event that minted, linked or merged into the customer, why an
        identifier is part of it; moved with the identifiers on merges and splits (docs/stitcher.md)."""
        return f"{self.idg}:why:{cid}"

    def blocked(self, cid: str) -> str:
        """SET of customer ids a split separated from cid: identity.lua refuses to merge them again."""
        return f"{self.idg}:block:{cid}"

    def split_record(self, split_id: str) -> str:
        """STRING JSON of one split (its plan and state), so it can be repeated after a crash and undone."""
        return f"{self.idg}:split:{split_id}"

    # -- one customer's journey (owner: the stitcher, journey.lua) -------------------------------
    def cust_tag(self, cid: str) -> str:
        return f"{self.prefix}:{{{self.prefix}:c:{cid}}}"

    def timeline(self, cid: str) -> str:
        """ZSET member event_id, score occurred_at_ms: event-time order, ties by event_id."""
        return f"{self.cust_tag(cid)}:tl"

    def touchpoints(self, cid: str) -> str:
        """HASH event_id -> touchpoint JSON."""
        return f"{self.cust_tag(cid)}:ev"

    def summary(self, cid: str) -> str:
        """HASH of the journey summary (counters and last-by-event-time fields)."""
        return f"{self.cust_tag(cid)}:sum"

    def masked(self, cid: str) -> str:
        """HASH id_key -> masked display value."""
        return f"{self.cust_tag(cid)}:mask"

    # -- per-customer detector state (owner: gap detector) --------------------------------------
    def detector_state(self, cid: str) -> str:
        """HASH detector state per journey type / intent (JSON values); field 't' holds its pending stall
        timers (the truth; ``timers`` is their index)."""
        return f"{self.cust_tag(cid)}:det"

    def open_alerts(self, cid: str) -> str:
        """HASH alert_id -> gap_alert JSON, the alerts still open for this customer."""
        return f"{self.cust_tag(cid)}:alerts"

    def alert_handling(self, cid: str) -> str:
        """HASH alert_id -> handling JSON (acknowledged/resolved by whom, when, the note; owner: the API), in
        the slot of the customer the alert was raised for; field '~v' counts its changes. Apart from the
        detector's alert documents, so no detector write can undo an agent's action."""
        return f"{self.cust_tag(cid)}:handled"

    @property
    def handled_customers(self) -> str:
        """SET of the customers with an entry in their ``alert_handling`` hash (added by the API before it
        writes one): the detector asks it once per published batch (SMISMEMBER) and reads the handling
        of those few only, not one HMGET per customer with an alert."""
        return f"{self.prefix}:{{{self.prefix}:alerts}}:handled"

    def customer_outbox(self, cid: str) -> str:
        """HASH alert_id -> gap_alert JSON: alerts raised for this customer, saved with its state in one
        single-slot script and not yet acknowledged by Kafka (the latest version of each id). Indexed by
        ``alerts_outbox`` so a sweep finds what a failed or dead worker left."""
        return f"{self.cust_tag(cid)}:outbox"

    # -- detector-wide (owner: gap detector) ----------------------------------------------------
    @property
    def timers(self) -> str:
        """ZSET member '<cid>|<journey_type>', score deadline in event-time ms: an index of the timers in the
        customers' states, re-checked against the state when one fires."""
        return f"{self.prefix}:{{{self.prefix}:det}}:timers"

    @property
    def timers_inflight(self) -> str:
        """ZSET member '<cid>|<journey_type>', score lease expiry (wall ms): claimed timers being fired;
        an expired lease goes back to ``timers``, so a worker dying mid-fire loses no stall."""
        return f"{self.prefix}:{{{self.prefix}:det}}:timers:inflight"

    def dropoff_minute(self, minute_ms: int) -> str:
        """HASH of one event-time minute: '<journey>|<stage>|<channel>' -> volume, '<cell>|d' -> drop-offs,
        '!a|<cell>' -> set once a dropoff_spike was raised for that cell-minute."""
        return f"{self.prefix}:{{{self.prefix}:det}}:drop:{minute_ms}"

    @property
    def dropoff_pending(self) -> str:
        """ZSET member '<journey>|<stage>|<channel>|<minute ms>', score minute: cells to judge once the
        watermark passes their minute (queued again by every late write)."""
        return f"{self.prefix}:{{{self.prefix}:det}}:drop:pending"

    @property
    def dropoff_outbox(self) -> str:
        """HASH alert_id -> dropoff_spike JSON not yet acknowledged by Kafka, saved with the cell-minute's
        '!a|<cell>' mark (the drop-off alerts' counterpart of ``customer_outbox``)."""
        return f"{self.prefix}:{{{self.prefix}:det}}:drop:outbox"

    @property
    def dropoff_judged(self) -> str:
        """STRING the last event-time minute (ms) whose drop-off cells were judged."""
        return f"{self.prefix}:{{{self.prefix}:det}}:drop:judged"

    @property
    def clock_inputs(self) -> str:
        """HASH channel-events partition -> '<max occurred_at ms>:<seen-through wall ms>:<wall ms the max last
        grew>', written by the stitchers once the records they cover are published: what the input has
        proven (see docs/RULES.md, "Stalls only on evidence")."""
        return f"{self.prefix}:{{{self.prefix}:det}}:clock:inputs"

    @property
    def clock_seen(self) -> str:
        """HASH '<topic>:<partition>' of the detector's inputs -> wall ms before which every record appended
        to it was handled and committed by a detector (the loop's seen_through)."""
        return f"{self.prefix}:{{{self.prefix}:det}}:clock:seen"

    @property
    def clock_pending(self) -> str:
        """ZSET member '<noted ms>:<candidate watermark>', score noted ms: watermark candidates waiting until
        every detector input is seen through the time they were noted."""
        return f"{self.prefix}:{{{self.prefix}:det}}:clock:pending"

    @property
    def watermark(self) -> str:
        """STRING the detector's event-time watermark (ms)."""
        return f"{self.prefix}:{{{self.prefix}:det}}:wm"

    @property
    def recent_alerts(self) -> str:
        """ZSET alert_id by detected_at ms (bounded), for GET /api/v1/alerts."""
        return f"{self.prefix}:{{{self.prefix}:alerts}}:recent"

    @property
    def alerts_by_id(self) -> str:
        """HASH alert_id -> gap_alert JSON for the recent alerts."""
        return f"{self.prefix}:{{{self.prefix}:alerts}}:byid"

    @property
    def alerts_outbox(self) -> str:
        """ZSET member '<cid>|<alert_id>' ('|<alert_id>' for a drop-off spike), score wall ms it may be
        published by a sweep: the index of ``customer_outbox`` / ``dropoff_outbox``, written before them
        (a member whose entry is gone is dropped by the sweep). The saving worker publishes and removes
        them; one that failed or died leaves them for any worker's sweep (the transactional outbox
        pattern: an alert goes out only once its state is saved, and is never lost)."""
        return f"{self.prefix}:{{{self.prefix}:alerts}}:outbox"

    # -- audit (owner: API) ---------------------------------------------------------------------
    @property
    def erasure_audit(self) -> str:
        """STREAM of erasure records (customer id, time, counts; no PII)."""
        return f"{self.prefix}:audit:erasures"

    # -- everything of one customer, for erasure ------------------------------------------------
    def customer_scoped(self, cid: str) -> list[str]:
        """Every per-customer key (hash tag {<p>:c:<cid>}). A service adding one adds it here too."""
        return [
            self.timeline(cid),
            self.touchpoints(cid),
            self.summary(cid),
            self.masked(cid),
            self.detector_state(cid),
            self.open_alerts(cid),
            self.customer_outbox(cid),
            self.alert_handling(cid),
        ]
