"""The one builder of dead-letter records (docs/ARCHITECTURE.md, "Kafka headers").

value and key are the original bytes; headers say why (``dlq_reason``, ``dlq_detail`` — never an
identifier value) and where from (topic, partition, offset), then the original headers follow.
"""

from __future__ import annotations

from services.common.kafka_loop import OutRecord, Record


def dead_letter(record: Record, dlq_topic: str, reason: str, detail: str, at_ms: int) -> OutRecord:
    headers = [("dlq_reason", reason.encode()), ("dlq_detail", detail.encode()),
               ("dlq_source_topic", record.topic.encode()),
               ("dlq_source_partition", str(record.partition).encode()),
               ("dlq_source_offset", str(record.offset).encode()), ("dlq_at_ms", str(at_ms).encode())]
    headers += [(k, v) for k, v in record.headers.items() if not k.startswith("dlq_")]
    return OutRecord(dlq_topic, record.key, record.value, headers)
