"""The Confluent Schema Registry API on the node's HTTP port, driven by confluent-kafka's own
SchemaRegistryClient and its Avro and JSON Schema serializers."""

import json

import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from conftest import consume_partitions, create_topic, unique

AVRO_V1 = json.dumps({"type": "record", "name": "Order", "namespace": "shop", "fields": [
    {"name": "id", "type": "string"}, {"name": "amount", "type": "double"}]})
AVRO_V2 = json.dumps({"type": "record", "name": "Order", "namespace": "shop", "fields": [
    {"name": "id", "type": "string"}, {"name": "amount", "type": "double"},
    {"name": "note", "type": ["null", "string"], "default": None}]})
AVRO_BAD = json.dumps({"type": "record", "name": "Order", "namespace": "shop", "fields": [
    {"name": "id", "type": "string"}, {"name": "amount", "type": "string"}]})
JSON_V1 = json.dumps({"type": "object", "additionalProperties": False,
                      "properties": {"id": {"type": "string"}, "amount": {"type": "number"}},
                      "required": ["id", "amount"]})


def client(node):
    return SchemaRegistryClient({"url": node.http_url})


def test_register_lookup_versions_and_ids(node):
    sr = client(node)
    subject = unique("orders") + "-value"
    id1 = sr.register_schema(subject, Schema(AVRO_V1, "AVRO"))
    assert sr.register_schema(subject, Schema(AVRO_V1, "AVRO")) == id1, "same schema, same id"
    id2 = sr.register_schema(subject, Schema(AVRO_V2, "AVRO"))
    assert id2 != id1
    latest = sr.get_latest_version(subject)
    assert (latest.version, latest.schema_id) == (2, id2)
    assert json.loads(sr.get_schema(id1).schema_str) == json.loads(AVRO_V1)
    assert sr.get_versions(subject) == [1, 2]
    assert subject in sr.get_subjects()
    found = sr.lookup_schema(subject, Schema(AVRO_V1, "AVRO"))
    assert (found.version, found.schema_id) == (1, id1)
    js = unique("clicks") + "-value"
    jid = sr.register_schema(js, Schema(JSON_V1, "JSON"))
    assert sr.get_schema(jid).schema_type == "JSON"


def test_incompatible_change_is_refused_with_an_explanation(node):
    sr = client(node)
    subject = unique("orders") + "-value"
    sr.register_schema(subject, Schema(AVRO_V1, "AVRO"))
    assert sr.test_compatibility(subject, Schema(AVRO_V2, "AVRO")) is True
    assert sr.test_compatibility(subject, Schema(AVRO_BAD, "AVRO")) is False
    with pytest.raises(SchemaRegistryError) as e:
        sr.register_schema(subject, Schema(AVRO_BAD, "AVRO"))
    assert e.value.http_status_code == 409
    assert "field 'amount'" in e.value.error_message, e.value.error_message
    # With compatibility NONE for the subject the same change is accepted.
    sr.set_compatibility(subject, "NONE")
    assert sr.get_compatibility(subject) == "NONE"
    sr.register_schema(subject, Schema(AVRO_BAD, "AVRO"))


def test_errors_use_confluent_codes(node):
    sr = client(node)
    with pytest.raises(SchemaRegistryError) as e:
        sr.get_latest_version("nope-value")
    assert (e.value.http_status_code, e.value.error_code) == (404, 40401)
    with pytest.raises(SchemaRegistryError) as e:
        sr.get_schema(424242)
    assert e.value.error_code == 40403
    with pytest.raises(SchemaRegistryError) as e:
        sr.register_schema(unique("x"), Schema('{"type": "recrod"}', "AVRO"))
    assert e.value.error_code == 42201


def test_soft_and_permanent_delete(node):
    sr = client(node)
    subject = unique("gone") + "-value"
    sid = sr.register_schema(subject, Schema(AVRO_V1, "AVRO"))
    with pytest.raises(SchemaRegistryError) as e:
        sr.delete_subject(subject, permanent=True)
    assert e.value.error_code == 40405
    assert sr.delete_subject(subject) == [1]
    assert subject not in sr.get_subjects()
    assert sr.delete_subject(subject, permanent=True) == [1]
    assert json.loads(sr.get_schema(sid).schema_str) == json.loads(AVRO_V1)


def test_serializers_round_trip_through_the_node_and_state_survives_restart(node):
    topic = create_topic(node.bootstrap, unique("orders"))
    sr = client(node)
    avro_ser = AvroSerializer(sr, AVRO_V1)
    ctx = SerializationContext(topic, MessageField.VALUE)
    p = Producer({"bootstrap.servers": node.bootstrap})
    p.produce(topic, value=avro_ser({"id": "o-1", "amount": 12.5}, ctx), partition=0)
    p.flush(10)
    [m] = consume_partitions(node.bootstrap, topic, [0])
    assert m.value()[0] == 0, "Confluent framing: magic byte 0"
    assert AvroDeserializer(sr)(m.value(), ctx) == {"id": "o-1", "amount": 12.5}

    jtopic = create_topic(node.bootstrap, unique("clicks"))
    jctx = SerializationContext(jtopic, MessageField.VALUE)
    json_ser = JSONSerializer(JSON_V1, sr)
    p.produce(jtopic, value=json_ser({"id": "c-1", "amount": 3}, jctx), partition=0)
    p.flush(10)
    [m] = consume_partitions(node.bootstrap, jtopic, [0])
    assert JSONDeserializer(JSON_V1, schema_registry_client=sr)(m.value(), jctx) == {"id": "c-1", "amount": 3}

    node.restart()
    sr2 = client(node)
    assert f"{topic}-value" in sr2.get_subjects()
    assert sr2.get_latest_version(f"{jtopic}-value").schema.schema_type == "JSON"
