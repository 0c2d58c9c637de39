from __future__ import annotations

from pathlib import Path

import pytest

from services.stack.kafka_broker import _cluster_id, server_properties
from services.stack.kafka_jars import _mvn_error

pytestmark = pytest.mark.unit


def test_broker_is_a_single_kraft_node_on_loopback() -> None:
    props = server_properties(Path("/data"), 39092, 39093, 4)
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:39093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:39092,CONTROLLER://127.0.0.1:39093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:39092"
    assert props["log.dirs"] == "/data"


def test_every_internal_topic_fits_one_broker() -> None:
    props = server_properties(Path("/d"), 1, 2, 6)
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["transaction.state.log.replication.factor"] == "1"
    assert props["transaction.state.log.min.isr"] == "1"
    assert props["num.partitions"] == "6"
    assert props["group.initial.rebalance.delay.ms"] == "0"


def test_cluster_id_has_kafkas_shape() -> None:
    ids = {_cluster_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(len(i) == 22 and "=" not in i for i in ids)


def test_cluster_id_never_reads_as_an_option() -> None:
    # One random id in 64 began with "-" and kafka-storage took it for a flag (a CI run failed on it).
    assert not any(_cluster_id().startswith("-") for _ in range(2000))


def test_mvn_error_names_the_first_error_line() -> None:
    out = (
        "[INFO] Scanning\n[ERROR] Failed to execute goal ... Could not transfer artifact "
        "org.apache.kafka:kafka_2.13:pom:3.9.1 from/to central: Connection refused\n[ERROR] -> [Help 1]\n"
    )
    assert _mvn_error(out).startswith("[ERROR] Failed to execute goal")
    assert _mvn_error("just one line\n") == "just one line"
    assert _mvn_error("") == "mvn failed without output"
