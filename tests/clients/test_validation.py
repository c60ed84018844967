"""Validation at produce for topics with headwater.validation=reject: records must be valid under
the subject <topic>-value. Invalid ones fail with INVALID_RECORD and nothing of their batch is
written; valid batches are stored exactly as sent."""

import json

from confluent_kafka import KafkaError, Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from conftest import consume_partitions, create_topic, unique

PAYMENT = json.dumps({"type": "object", "additionalProperties": False,
                      "required": ["id", "amount"],
                      "properties": {"id": {"type": "string"}, "amount": {"type": "number"}}})
ORDER = json.dumps({"type": "record", "name": "Order", "fields": [
    {"name": "id", "type": "string"}, {"name": "amount", "type": "double"}]})


def deliver(bootstrap, topic, values):
    """Produce each value in its own batch; returns [(error or None, offset)]."""
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "retries": 0})
    out = []
    for v in values:
        got = []
        p.produce(topic, value=v, partition=0, on_delivery=lambda e, m: got.append((e, m.offset())))
        p.flush(10)
        out.append(got[0])
    return out


def test_plain_json_checked_against_the_latest_version(node):
    topic = create_topic(node.bootstrap, unique("payments"), config={"headwater.validation": "reject"})
    SchemaRegistryClient({"url": node.http_url}).register_schema(f"{topic}-value", Schema(PAYMENT, "JSON"))
    good = b'{"id": "p-1", "amount": 12.5}'
    results = deliver(node.bootstrap, topic, [good, b'{"id": "p-2", "amount": "lots"}', b"not json", good])
    assert results[0] == (None, 0)
    for err, _ in results[1:3]:
        assert err is not None and err.code() == KafkaError.INVALID_RECORD, err
    assert results[3] == (None, 1)
    stored = consume_partitions(node.bootstrap, topic, [0])
    assert [m.value() for m in stored] == [good, good], "only valid records, byte for byte"
    assert "break the contract" in node.log_since_last_start()


def test_framed_records_must_use_a_version_of_the_topics_subject(node):
    topic = create_topic(node.bootstrap, unique("orders"), config={"headwater.validation": "reject"})
    sr = SchemaRegistryClient({"url": node.http_url})
    sr.register_schema(f"{topic}-value", Schema(ORDER, "AVRO"))
    other = sr.register_schema(unique("other") + "-value", Schema(PAYMENT, "JSON"))
    ctx = SerializationContext(topic, MessageField.VALUE)
    valid = AvroSerializer(sr, ORDER, conf={"auto.register.schemas": False, "use.latest.version": True})(
        {"id": "o-1", "amount": 3.0}, ctx)
    wrong_subject = b"\x00" + other.to_bytes(4, "big") + b'{"id": "x", "amount": 1}'
    truncated = valid[:-3]
    results = deliver(node.bootstrap, topic, [valid, wrong_subject, truncated, b'{"id": "o-2"}'])
    assert results[0] == (None, 0)
    for err, _ in results[1:]:
        assert err is not None and err.code() == KafkaError.INVALID_RECORD, err


def test_topics_without_validation_take_any_bytes(node):
    topic = create_topic(node.bootstrap, unique("free"))
    SchemaRegistryClient({"url": node.http_url}).register_schema(f"{topic}-value", Schema(PAYMENT, "JSON"))
    assert deliver(node.bootstrap, topic, [b"anything at all"]) == [(None, 0)]


def test_validation_without_a_schema_refuses_with_the_fix(node):
    topic = create_topic(node.bootstrap, unique("unregistered"), config={"headwater.validation": "reject"})
    [(err, _)] = deliver(node.bootstrap, topic, [b'{"id": "p"}'])
    assert err is not None and err.code() == KafkaError.INVALID_RECORD
    assert "has no schema" in node.log_since_last_start()


def test_dead_letters_keep_an_idempotent_producers_sequence(node):
    """A batch whose records are all (or first) dead-lettered still advances the producer's
    sequence: the node writes a record-less batch over their offsets, as Kafka's log cleaner
    does, so the producer is never told OUT_OF_ORDER_SEQUENCE_NUMBER; and every client reads
    past such batches."""
    import subprocess
    from kafka import KafkaConsumer, TopicPartition as KTP
    topic = create_topic(node.bootstrap, unique("settled"), config={"headwater.validation": "dead-letter"})
    create_topic(node.bootstrap, f"{topic}.dlq")
    SchemaRegistryClient({"url": node.http_url}).register_schema(f"{topic}-value", Schema(PAYMENT, "JSON"))
    p = Producer({"bootstrap.servers": node.bootstrap, "enable.idempotence": True, "linger.ms": 0})
    good = lambda i: json.dumps({"id": f"p-{i}", "amount": i}).encode()
    bad = b'{"id": "oops"}'
    results = []
    for batch in [[bad], [good(1)], [bad, bad, good(2)], [good(3), bad], [bad]]:
        for v in batch:
            p.produce(topic, value=v, partition=0,
                      on_delivery=lambda e, m: results.append(e))
        assert p.flush(10) == 0
    p.produce(topic, value=good(4), partition=0, on_delivery=lambda e, m: results.append(e))
    assert p.flush(10) == 0
    assert results == [None] * len(results) and len(results) == 9, results

    want = [good(i) for i in (1, 2, 3, 4)]
    assert [m.value() for m in consume_partitions(node.bootstrap, topic, [0], allow_gaps=True)] == want
    kcat = subprocess.run(["kcat", "-C", "-b", node.bootstrap, "-t", topic, "-p", "0", "-o", "beginning",
                           "-e", "-q", "-f", "%s\\n"], capture_output=True, timeout=30)
    assert kcat.stdout.decode().splitlines() == [v.decode() for v in want]
    kp = KafkaConsumer(bootstrap_servers=node.bootstrap, consumer_timeout_ms=3000,
                       auto_offset_reset="earliest", enable_auto_commit=False)
    kp.assign([KTP(topic, 0)])
    assert [m.value for m in kp] == want
    kp.close()
    assert len(consume_partitions(node.bootstrap, f"{topic}.dlq", [0])) == 5
