"""kafka-python (pure-Python client) against a headwater node."""

import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from conftest import unique

COMMON = {"request_timeout_ms": 30000}


def admin(node):
    return KafkaAdminClient(bootstrap_servers=node.bootstrap, client_id="hw-test-admin", **COMMON)


def test_admin_create_list_delete_topics(node):
    a = admin(node)
    try:
        t1, t2 = unique("kp"), unique("kp")
        a.create_topics([NewTopic(t1, num_partitions=3, replication_factor=1),
                         NewTopic(t2, num_partitions=1, replication_factor=1,
                                  topic_configs={"retention.ms": "3600000"})])
        deadline = time.monotonic() + 30
        while not {t1, t2} <= set(a.list_topics()):
            assert time.monotonic() < deadline, f"created topics not listed: {a.list_topics()}"
            time.sleep(0.2)
        described = {d.get("name", d.get("topic")): d for d in a.describe_topics([t1])}
        assert len(described[t1]["partitions"]) == 3

        a.delete_topics([t1])
        deadline = time.monotonic() + 30
        while t1 in set(a.list_topics()):
            assert time.monotonic() < deadline, "deleted topic still listed"
            time.sleep(0.2)
        assert t2 in set(a.list_topics())
    finally:
        a.close()


def test_producer_consumer_round_trip(node):
    topic = unique("kp")
    a = admin(node)
    try:
        a.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    finally:
        a.close()

    p = KafkaProducer(bootstrap_servers=node.bootstrap, acks="all", linger_ms=5, **COMMON)
    futures = []
    for i in range(200):
        futures.append(p.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode(),
                              headers=[("i", str(i).encode())], partition=i % 2))
    metas = [f.get(timeout=30) for f in futures]
    p.flush(timeout=30)
    p.close(timeout=10)
    for i, md in enumerate(metas):
        assert md.partition == i % 2
        assert md.offset == i // 2

    group = unique("kpg")
    c = KafkaConsumer(topic, bootstrap_servers=node.bootstrap, group_id=group,
                      auto_offset_reset="earliest", enable_auto_commit=False,
                      consumer_timeout_ms=1000, **COMMON)
    got = {}
    deadline = time.monotonic() + 60
    try:
        while len(got) < 200:
            assert time.monotonic() < deadline, f"consumed only {len(got)} of 200"
            for msg in c:
                got[msg.key] = msg
        c.commit()
        committed = {p: c.committed(TopicPartition(topic, p)) for p in (0, 1)}
    finally:
        c.close()
    for i in range(200):
        m = got[f"k{i}".encode()]
        assert m.value == f"v{i}".encode()
        assert m.partition == i % 2
        assert m.offset == i // 2
        assert list(m.headers) == [("i", str(i).encode())]
    assert committed == {0: 100, 1: 100}

    # A new consumer in the same group has nothing left to read.
    c = KafkaConsumer(topic, bootstrap_servers=node.bootstrap, group_id=group,
                      auto_offset_reset="earliest", enable_auto_commit=False,
                      consumer_timeout_ms=3000, **COMMON)
    try:
        assert list(c) == []
    finally:
        c.close()


def test_compression_types(node):
    topic = unique("kp")
    a = admin(node)
    try:
        a.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        a.close()
    # gzip is pure-Python here; the others need optional modules kafka-python may lack.
    p = KafkaProducer(bootstrap_servers=node.bootstrap, compression_type="gzip", linger_ms=20,
                      **COMMON)
    values = [(f"g{i}-" + "z" * 100).encode() for i in range(300)]
    for v in values:
        p.send(topic, value=v, partition=0)
    p.flush(timeout=30)
    p.close(timeout=10)
    c = KafkaConsumer(bootstrap_servers=node.bootstrap, group_id=None,
                      auto_offset_reset="earliest", consumer_timeout_ms=2000, **COMMON)
    c.assign([TopicPartition(topic, 0)])
    c.seek_to_beginning()
    got = []
    deadline = time.monotonic() + 60
    try:
        while len(got) < len(values):
            assert time.monotonic() < deadline
            got.extend(m.value for m in c)
    finally:
        c.close()
    assert got == values
