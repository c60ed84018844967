"""confluent-kafka (librdkafka) producer, consumer, consumer groups and admin
client against a headwater node."""

import re
import time

import pytest
from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException,
                             TopicPartition)
from confluent_kafka.admin import (AlterConfigOpType, ConfigEntry, ConfigResource,
                                   NewPartitions, ResourceType)

from conftest import (admin_client, consume_n, consume_partitions, consumer, create_topic,
                      produce_all, producer, run_cli, unique, wait_for_topic)

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def test_produce_consume_round_trip(node):
    topic = create_topic(node.bootstrap, partitions=3)
    records = [(f"k{i}".encode(), f"v{i}".encode(), [("h", f"{i}".encode()), ("n", None)], i % 3)
               for i in range(300)]
    delivered = produce_all(node.bootstrap, topic, records)
    acked = {m.value(): (m.partition(), m.offset()) for m in delivered}
    assert len(acked) == 300

    c = consumer(node.bootstrap)
    c.subscribe([topic])
    try:
        msgs = consume_n(c, 300)
    finally:
        c.close()
    seen = {}
    for m in msgs:
        i = int(m.key()[1:])
        assert m.value() == f"v{i}".encode()
        assert m.partition() == i % 3
        assert m.headers() == [("h", f"{i}".encode()), ("n", None)]
        assert m.timestamp()[0] != 0
        seen[m.value()] = (m.partition(), m.offset())
    assert seen == acked
    # Per partition, offsets are 0..99 in production order.
    for p in range(3):
        offs = sorted(off for part, off in seen.values() if part == p)
        assert offs == list(range(100))


def test_null_key_and_empty_value(node):
    topic = create_topic(node.bootstrap)
    produce_all(node.bootstrap, topic, [(None, b"no-key"), (b"k", b""), (b"k2", None)])
    msgs = consume_partitions(node.bootstrap, topic, [0])
    assert [(m.key(), m.value()) for m in msgs] == [(None, b"no-key"), (b"k", b""), (b"k2", None)]


def test_idempotent_producer_in_order_no_duplicates(node):
    topic = create_topic(node.bootstrap, partitions=2)
    n = 5000
    records = [(None, f"{i}".encode(), None, i % 2) for i in range(n)]
    delivered = produce_all(node.bootstrap, topic, records, **{
        "enable.idempotence": True, "acks": "all", "linger.ms": 2, "batch.num.messages": 200,
        "max.in.flight.requests.per.connection": 5})
    assert len(delivered) == n
    msgs = consume_partitions(node.bootstrap, topic, [0, 1])
    assert len(msgs) == n
    for p in (0, 1):
        values = [int(m.value()) for m in msgs if m.partition() == p]
        assert values == list(range(p, n, 2)), "out of order or duplicated records"
        assert [m.offset() for m in msgs if m.partition() == p] == list(range(n // 2))
    acked = {m.value(): m.offset() for m in delivered}
    for m in msgs:
        assert acked[m.value()] == m.offset()


@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_acks(node, acks):
    topic = create_topic(node.bootstrap)
    values = [f"acks{acks}-{i}".encode() for i in range(200)]
    delivered = produce_all(node.bootstrap, topic, [(None, v) for v in values], acks=acks)
    if acks != "0":
        assert [m.offset() for m in delivered] == list(range(200))
    msgs = consume_partitions(node.bootstrap, topic, [0])
    assert [m.value() for m in msgs] == values


@pytest.mark.parametrize("codec", CODECS)
def test_compression(node, codec):
    topic = create_topic(node.bootstrap, partitions=2)
    values = [(f"{codec}-{i}-" + "payload" * (i % 50)).encode() for i in range(1000)]
    produce_all(node.bootstrap, topic, [(str(i).encode(), v, None, i % 2) for i, v in enumerate(values)],
                **{"compression.type": codec, "linger.ms": 20})
    msgs = consume_partitions(node.bootstrap, topic, [0, 1])
    got = {int(m.key()): m.value() for m in msgs}
    assert len(msgs) == 1000
    assert got == dict(enumerate(values))
    for p in (0, 1):
        assert [m.offset() for m in msgs if m.partition() == p] == list(range(500))
    # Stored as produced: `log inspect` shows the codec on every batch librdkafka compressed.
    # It sends a batch uncompressed when compressing would not make it smaller (a lone short
    # record, say), so a one-record batch may be plain; every larger one carries the codec.
    assert node.stop() == 0
    for p in (0, 1):
        res = run_cli("log", "inspect", str(node.partition_dir(topic, p)))
        assert res.returncode == 0, res.stdout + res.stderr
        lines = [l for l in res.stdout.splitlines() if re.search(r"\bcompression\W+\w", l, re.I)]
        assert lines, f"`log inspect` shows no compression field:\n{res.stdout}"
        compressed = [l for l in lines if re.search(rf"\bcompression\W+{codec}\b", l, re.I)]
        assert compressed, f"no batch stored as {codec}:\n{res.stdout}"
        for line in lines:
            if line not in compressed:
                assert re.search(r"\bcount\W+1\b", line), f"batch not stored as {codec}: {line}"


def test_consumer_group_rebalance(node):
    topic = create_topic(node.bootstrap, partitions=6)
    group = unique("grp")
    conf = {"group.id": group, "enable.auto.commit": True, "auto.commit.interval.ms": 200,
            "session.timeout.ms": 10000, "heartbeat.interval.ms": 300,
            "max.poll.interval.ms": 30000,
            "partition.assignment.strategy": "range"}

    events = []
    received = {}

    class Member:
        def __init__(self, name):
            self.name = name
            self.assigned = set()
            self.c = consumer(node.bootstrap, **conf)
            self.c.subscribe([topic], on_assign=self.on_assign, on_revoke=self.on_revoke)
            self.closed = False

        def on_assign(self, c, parts):
            self.assigned = {p.partition for p in parts}
            events.append((self.name, "assign", sorted(self.assigned)))

        def on_revoke(self, c, parts):
            events.append((self.name, "revoke", sorted(p.partition for p in parts)))
            self.assigned = set()

        def poll(self):
            msg = self.c.poll(0.05)
            if msg is None:
                return
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    return
                raise AssertionError(f"{self.name}: {msg.error()}")
            received.setdefault(msg.value(), []).append(self.name)

    def poll_until(members, cond, what, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in members:
                m.poll()
            if cond():
                return
        raise AssertionError(
            f"timed out waiting for {what}; assignments "
            f"{[(m.name, sorted(m.assigned)) for m in members]}; events {events}")

    def spread_over(members):
        def cond():
            sets = [m.assigned for m in members]
            if any(not s for s in sets):
                return False
            union = set().union(*sets)
            return union == set(range(6)) and sum(len(s) for s in sets) == 6
        return cond

    def produce_phase(phase, n=300):
        produce_all(node.bootstrap, topic,
                    [(None, f"{phase}-{i}".encode(), None, i % 6) for i in range(n)])
        return {f"{phase}-{i}".encode() for i in range(n)}

    expected = produce_phase("a")
    members = [Member(f"m{i}") for i in range(3)]
    try:
        poll_until(members, spread_over(members), "3 members sharing 6 partitions")
        assert sorted(len(m.assigned) for m in members) == [2, 2, 2]
        poll_until(members, lambda: expected <= received.keys(), "phase a records")

        fourth = Member("m3")
        members.append(fourth)
        poll_until(members, spread_over(members), "4 members sharing 6 partitions")
        assert sorted(len(m.assigned) for m in members) == [1, 1, 2, 2]
        expected |= produce_phase("b")
        poll_until(members, lambda: expected <= received.keys(), "phase b records")

        fourth.c.close()  # LeaveGroup
        fourth.closed = True
        fourth.assigned = set()
        members.remove(fourth)
        poll_until(members, spread_over(members), "3 members after the 4th left", timeout=30)
        expected |= produce_phase("c")
        poll_until(members, lambda: expected <= received.keys(), "phase c records")
    finally:
        for m in members:
            if not m.closed:
                m.c.close()

    assert expected == set(received), "records missing or unexpected"
    assert any(e[0] == "m3" and e[1] == "assign" and e[2] for e in events)


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_committed_offsets_survive_restart(make_node, how):
    # fsync=always so that a commit acknowledged before SIGKILL must survive it.
    node = make_node(config='[log]\nfsync = "always"\n' if how == "sigkill" else None)
    topic = create_topic(node.bootstrap)
    group = unique("grp")
    produce_all(node.bootstrap, topic, [(None, f"m{i}".encode()) for i in range(20)])

    c = consumer(node.bootstrap, group)
    c.subscribe([topic])
    msgs = consume_n(c, 10)
    assert [m.value() for m in msgs] == [f"m{i}".encode() for i in range(10)]
    c.commit(message=msgs[-1], asynchronous=False)
    committed = c.committed([TopicPartition(topic, 0)], timeout=10)
    assert committed[0].offset == 10
    c.close()

    if how == "sigkill":
        node.kill()
    else:
        assert node.stop() == 0
    node.restart()

    c = consumer(node.bootstrap, group)
    try:
        committed = c.committed([TopicPartition(topic, 0)], timeout=10)
        assert committed[0].offset == 10, committed
        c.subscribe([topic])
        msgs = consume_n(c, 10)
        assert msgs[0].offset() == 10
        assert [m.value() for m in msgs] == [f"m{i}".encode() for i in range(10, 20)]
    finally:
        c.close()


def test_offset_commit_with_metadata_and_fetch_unknown_group(node):
    topic = create_topic(node.bootstrap, partitions=2)
    group = unique("grp")
    c = consumer(node.bootstrap, group)
    try:
        # A group that never committed has no offsets.
        res = c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=10)
        assert [tp.offset for tp in res] == [-1001, -1001]  # OFFSET_INVALID
        tp = TopicPartition(topic, 1, 7, "hello")
        c.commit(offsets=[tp], asynchronous=False)
        res = c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=10)
        assert res[0].offset == -1001
        assert res[1].offset == 7
        assert res[1].metadata == "hello"
    finally:
        c.close()


def test_list_offsets(node):
    topic = create_topic(node.bootstrap)
    base = 1_600_000_000_000
    p = producer(node.bootstrap)
    for i in range(10):
        p.produce(topic, value=f"m{i}".encode(), partition=0, timestamp=base + i * 1000)
    assert p.flush(30) == 0

    c = consumer(node.bootstrap)
    try:
        low, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        assert (low, high) == (0, 10)
        query = [TopicPartition(topic, 0, base - 5000),      # before all -> 0
                 ]
        res = c.offsets_for_times(query, timeout=10)
        assert res[0].offset == 0
        res = c.offsets_for_times([TopicPartition(topic, 0, base + 2500)], timeout=10)
        assert res[0].offset == 3
        res = c.offsets_for_times([TopicPartition(topic, 0, base + 3000)], timeout=10)
        assert res[0].offset == 3
        res = c.offsets_for_times([TopicPartition(topic, 0, base + 9000)], timeout=10)
        assert res[0].offset == 9
        res = c.offsets_for_times([TopicPartition(topic, 0, base + 99_000)], timeout=10)
        assert res[0].offset == -1
        # Seek by time and read.
        c.assign([TopicPartition(topic, 0, 5)])
        msgs = consume_n(c, 5)
        assert [m.value() for m in msgs] == [f"m{i}".encode() for i in range(5, 10)]
        assert [m.timestamp()[1] for m in msgs] == [base + i * 1000 for i in range(5, 10)]
    finally:
        c.close()

    # Empty partition: both watermarks 0.
    topic2 = create_topic(node.bootstrap)
    c = consumer(node.bootstrap)
    try:
        assert c.get_watermark_offsets(TopicPartition(topic2, 0), timeout=10) == (0, 0)
    finally:
        c.close()


def _describe(admin, topic):
    res = ConfigResource(ResourceType.TOPIC, topic)
    cfg = admin.describe_configs([res], request_timeout=30)[res].result(timeout=30)
    return {k: v.value for k, v in cfg.items()}


def test_describe_and_alter_topic_configs(node):
    topic = create_topic(node.bootstrap, config={"retention.ms": "3600000",
                                                 "segment.bytes": "1048576"})
    admin = admin_client(node.bootstrap)
    cfg = _describe(admin, topic)
    assert cfg.get("retention.ms") == "3600000", cfg
    assert cfg.get("segment.bytes") == "1048576", cfg
    for key in ("retention.bytes", "segment.ms", "headwater.fsync", "max.message.bytes"):
        assert key in cfg, f"{key} missing from DescribeConfigs: {cfg}"

    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("headwater.fsync", "always", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("max.message.bytes", "2000000", incremental_operation=AlterConfigOpType.SET),
    ])
    admin.incremental_alter_configs([res], request_timeout=30)[res].result(timeout=30)
    cfg = _describe(admin, topic)
    assert cfg["retention.ms"] == "7200000"
    assert cfg["headwater.fsync"] == "always"
    assert cfg["max.message.bytes"] == "2000000"
    assert cfg["segment.bytes"] == "1048576"  # untouched

    # DELETE resets to the default (no longer the explicit value).
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE)])
    admin.incremental_alter_configs([res], request_timeout=30)[res].result(timeout=30)
    cfg = _describe(admin, topic)
    assert cfg["retention.ms"] != "7200000"

    # An invalid value is refused and changes nothing.
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("headwater.fsync", "sometimes", incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(KafkaException):
        admin.incremental_alter_configs([res], request_timeout=30)[res].result(timeout=30)
    assert _describe(admin, topic)["headwater.fsync"] == "always"

    # Configs of an unknown topic: error.
    res = ConfigResource(ResourceType.TOPIC, unique("nosuch"))
    with pytest.raises(KafkaException):
        admin.describe_configs([res], request_timeout=30)[res].result(timeout=30)


def test_topic_configs_survive_restart(node):
    topic = create_topic(node.bootstrap, config={"retention.ms": "123456789"})
    admin = admin_client(node.bootstrap)
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.bytes", "987654321", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([res], request_timeout=30)[res].result(timeout=30)
    del admin
    assert node.stop() == 0
    node.restart()
    cfg = _describe(admin_client(node.bootstrap), topic)
    assert cfg["retention.ms"] == "123456789"
    assert cfg["retention.bytes"] == "987654321"


def test_list_describe_delete_groups(node):
    topic = create_topic(node.bootstrap, partitions=2)
    group = unique("grp")
    produce_all(node.bootstrap, topic, [(None, b"x", None, 0), (None, b"y", None, 1)])
    c = consumer(node.bootstrap, group)
    c.subscribe([topic])
    consume_n(c, 2)
    c.commit(asynchronous=False)
    admin = admin_client(node.bootstrap)
    try:
        listed = admin.list_consumer_groups(request_timeout=30).result(timeout=30)
        assert not listed.errors, listed.errors
        ids = {g.group_id for g in listed.valid}
        assert group in ids

        desc = admin.describe_consumer_groups([group], request_timeout=30)[group].result(timeout=30)
        assert desc.group_id == group
        assert str(desc.state).upper().endswith("STABLE"), desc.state
        assert len(desc.members) == 1
        assigned = {tp.partition for tp in desc.members[0].assignment.topic_partitions}
        assert assigned == {0, 1}
        assert desc.members[0].assignment.topic_partitions[0].topic == topic

        # A group with an active member cannot be deleted.
        with pytest.raises(KafkaException):
            admin.delete_consumer_groups([group], request_timeout=30)[group].result(timeout=30)
    finally:
        c.close()

    desc = admin.describe_consumer_groups([group], request_timeout=30)[group].result(timeout=30)
    assert str(desc.state).upper().endswith("EMPTY"), desc.state
    assert desc.members == []

    admin.delete_consumer_groups([group], request_timeout=30)[group].result(timeout=30)
    listed = admin.list_consumer_groups(request_timeout=30).result(timeout=30)
    assert group not in {g.group_id for g in listed.valid}
    # Its committed offsets are gone too.
    c = consumer(node.bootstrap, group)
    try:
        res = c.committed([TopicPartition(topic, 0)], timeout=10)
        assert res[0].offset == -1001
    finally:
        c.close()


def test_create_partitions(node):
    topic = create_topic(node.bootstrap, partitions=2)
    admin = admin_client(node.bootstrap)
    admin.create_partitions([NewPartitions(topic, 4)], request_timeout=30)[topic].result(timeout=30)
    wait_for_topic(node.bootstrap, topic, 4)
    produce_all(node.bootstrap, topic, [(None, f"p{p}".encode(), None, p) for p in range(4)])
    msgs = consume_partitions(node.bootstrap, topic, range(4))
    assert sorted((m.partition(), m.value()) for m in msgs) == [(p, f"p{p}".encode()) for p in range(4)]
    # Shrinking is refused.
    with pytest.raises(KafkaException):
        admin.create_partitions([NewPartitions(topic, 3)], request_timeout=30)[topic].result(timeout=30)
    # Survives restart.
    assert node.stop() == 0
    node.restart()
    wait_for_topic(node.bootstrap, topic, 4)


def test_create_existing_topic_fails_and_delete_topic(node):
    from confluent_kafka.admin import NewTopic
    topic = create_topic(node.bootstrap, partitions=1)
    admin = admin_client(node.bootstrap)
    with pytest.raises(KafkaException) as exc:
        admin.create_topics([NewTopic(topic, 1, 1)], request_timeout=30)[topic].result(timeout=30)
    assert exc.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS
    produce_all(node.bootstrap, topic, [(None, b"a")])
    admin.delete_topics([topic], request_timeout=30)[topic].result(timeout=30)
    deadline = time.monotonic() + 30
    while topic in admin.list_topics(timeout=10).topics:
        assert time.monotonic() < deadline, "deleted topic still in metadata"
        time.sleep(0.2)
    # Recreated topic starts empty.
    create_topic(node.bootstrap, name=topic)
    c = consumer(node.bootstrap)
    try:
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, 0)
    finally:
        c.close()


def _produce_expect_unknown_topic(bootstrap, topic):
    p = producer(bootstrap, **{"message.timeout.ms": 10000,
                               "topic.metadata.propagation.max.ms": 2000})
    results = []
    p.produce(topic, value=b"x", on_delivery=lambda err, msg: results.append(err))
    p.flush(30)
    assert len(results) == 1
    return results[0]


def test_auto_create_off_by_default(node):
    topic = unique("unknown")
    err = _produce_expect_unknown_topic(node.bootstrap, topic)
    assert err is not None, "produce to an unknown topic succeeded with auto-create off"
    assert err.code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC), err
    md = admin_client(node.bootstrap).list_topics(topic=topic, timeout=10)
    t = md.topics.get(topic)
    assert t is None or t.error is not None and t.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    assert topic not in admin_client(node.bootstrap).list_topics(timeout=10).topics


def test_auto_create_on_with_config(make_node):
    node = make_node(config="[kafka]\nauto_create_topics = true\n")
    topic = unique("auto")
    delivered = produce_all(node.bootstrap, topic, [(None, b"hello")])
    assert delivered[0].offset() == 0
    assert topic in admin_client(node.bootstrap).list_topics(timeout=10).topics
    msgs = consume_partitions(node.bootstrap, topic, [0])
    assert [m.value() for m in msgs] == [b"hello"]


def test_fetch_long_poll_delivers_new_records(node):
    """A consumer waiting at the end of the log gets a record produced later."""
    topic = create_topic(node.bootstrap)
    c = consumer(node.bootstrap, **{"fetch.wait.max.ms": 5000})
    try:
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        assert c.poll(1.0) is None
        produce_all(node.bootstrap, topic, [(None, b"late")])
        msgs = consume_n(c, 1, timeout=30)
        assert msgs[0].value() == b"late"
    finally:
        c.close()


def test_max_message_bytes_enforced(node):
    topic = create_topic(node.bootstrap, config={"max.message.bytes": "10000"})
    p = producer(node.bootstrap, **{"compression.type": "none"})
    results = []
    p.produce(topic, value=b"a" * 50000, partition=0,
              on_delivery=lambda err, msg: results.append(err))
    p.flush(30)  # separate batches: the small record must not share the big one's fate
    p.produce(topic, value=b"b" * 100, partition=0,
              on_delivery=lambda err, msg: results.append(err))
    p.flush(30)
    assert len(results) == 2
    errs = [e for e in results if e is not None]
    assert results[1] is None, results
    assert len(errs) == 1 and errs[0].code() == KafkaError.MSG_SIZE_TOO_LARGE, results
    msgs = consume_partitions(node.bootstrap, topic, [0])
    assert [m.value() for m in msgs] == [b"b" * 100]
