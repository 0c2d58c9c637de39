#!/usr/bin/env bash
# Failure scenarios with the default (live) clock, scored at the detector's watermark:
#   SCENARIO=backlog (default): a day of a simulated population queued while the services are down, then
#     the stitcher and the detector start and catch up;
#   SCENARIO=live: the services run while a population of the last days is sent at RATE records/s, so
#     every stall fires early (its successor is history, late by days) and must be retracted.
# Needs a running stack (journeys up --infra-only); uses its own topics, groups and key prefix.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN=${RUN:-bk$(date +%s)}
D=${OUT:-/tmp/journeys-scenarios}/$RUN; mkdir -p $D
export KAFKA_BOOTSTRAP_SERVERS=${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:39092} REDIS_URL=${REDIS_URL:-redis://127.0.0.1:36379/0}
export JOURNEYS_KEY_PREFIX=$RUN JOURNEYS_HMAC_SECRET=bench-secret-$RUN
for t in CHANNEL_EVENTS:channel-events DLQ:channel-events-dlq STITCHED_EVENTS:stitched-events IDENTITY_MERGES:identity-merges GAP_ALERTS:gap-alerts; do
  export JOURNEYS_TOPIC_${t%%:*}=$RUN-${t#*:}
done
export JOURNEYS_STITCHER_GROUP=$RUN-st JOURNEYS_DETECTOR_GROUP=$RUN-det
export JOURNEYS_STITCHER_METRICS_PORT=${SP:-19101} JOURNEYS_DETECTOR_METRICS_PORT=${DP:-19102}
SCENARIO=${SCENARIO:-backlog}
if [ "$SCENARIO" = live ]; then START=$(date -u -d "-4 day" +%Y-%m-%dT%H:%M:%SZ) SPAN=${SPAN:-3d}
else START=$(date -u -d "-1 day -8 min" +%Y-%m-%dT%H:%M:%SZ) SPAN=1d; fi
.venv/bin/journeys simulate --customers ${CUSTOMERS:-1030} --seed ${SEED:-7} --start $START --span $SPAN --out $D/pop.jsonl >/dev/null
.venv/bin/python - <<PY
from services.stack.kafka_broker import create_topics
import os
create_topics(os.environ["KAFKA_BOOTSTRAP_SERVERS"], [os.environ[k] for k in os.environ if k.startswith("JOURNEYS_TOPIC_")], 4)
PY
t0=$(date +%s)
[ "$SCENARIO" = live ] || .venv/bin/journeys replay $D/pop.jsonl --rate 0 >/dev/null  # queued, services down
.venv/bin/journeys stitcher > $D/stitcher.log 2>&1 & SP_PID=$!
.venv/bin/journeys detector > $D/detector.log 2>&1 & DP_PID=$!
trap 'kill $SP_PID $DP_PID 2>/dev/null || true' EXIT
if [ "$SCENARIO" = live ]; then sleep 8; .venv/bin/journeys replay $D/pop.jsonl --rate ${RATE:-25} >/dev/null; fi
# Caught up: both groups at the end of their topics, then the watermark near the wall clock.
.venv/bin/python - <<PY
import os, time
from confluent_kafka import Consumer, TopicPartition
import redis
from services.common.keys import Keys
env = os.environ
def lag(group, topics):
    c = Consumer({"bootstrap.servers": env["KAFKA_BOOTSTRAP_SERVERS"], "group.id": group})
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(4)]
        total = 0
        for tp in c.committed(tps, timeout=10):
            hi = c.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), 10)[1]
            total += hi - max(tp.offset, 0)
        return total
    finally:
        c.close()
r = redis.Redis.from_url(env["REDIS_URL"])
deadline = time.time() + 900
while time.time() < deadline:
    wm = r.get(Keys(env["JOURNEYS_KEY_PREFIX"]).watermark)
    ok = (lag(env["JOURNEYS_STITCHER_GROUP"], [env["JOURNEYS_TOPIC_CHANNEL_EVENTS"]]) == 0
          and lag(env["JOURNEYS_DETECTOR_GROUP"], [env["JOURNEYS_TOPIC_STITCHED_EVENTS"], env["JOURNEYS_TOPIC_IDENTITY_MERGES"]]) == 0
          and wm is not None and time.time() * 1000 - int(wm) < 5 * 60_000 + 10_000)
    if ok:
        break
    time.sleep(1)
print("caught up" if ok else "NOT caught up", "after", round(time.time() - $t0), "s")
PY
sleep 5
kill $SP_PID $DP_PID; wait $SP_PID $DP_PID || true
.venv/bin/journeys evaluate --truth $D/pop.truth.json --population $D/pop.jsonl --idle 10 --json > $D/eval.json || true
.venv/bin/python - <<PY
import orjson
r = orjson.loads(open("$D/eval.json","rb").read())
print(orjson.dumps({k: r[k] for k in r if k not in ("types",)}, option=orjson.OPT_INDENT_2).decode()[:1500])
for t in r.get("types", r.get("alerts", [])) if isinstance(r.get("types"), list) else (r.get("types") or {}).values():
    print(t)
PY
