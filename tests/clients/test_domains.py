"""Domains end to end: `headwater plan` and `apply` on the example domains, quality rules
enforced at produce, an incompatible schema change refused with its explanation, and only the
changed domain touched."""

import shutil
from pathlib import Path

from confluent_kafka import KafkaError, Producer

from conftest import REPO_ROOT, consume_partitions, run_cli

EXAMPLES = REPO_ROOT / "examples" / "domains"


def cli(node, *args):
    return run_cli(*args, "--url", node.http_url)


def copy_examples(tmp_path) -> Path:
    dest = tmp_path / "domains"
    shutil.copytree(EXAMPLES, dest)
    return dest


def produce(node, topic, value):
    p = Producer({"bootstrap.servers": node.bootstrap, "linger.ms": 0, "retries": 0})
    got = []
    p.produce(topic, value=value, partition=0, on_delivery=lambda e, m: got.append(e))
    p.flush(10)
    return got[0]


def test_plan_apply_and_rules_at_produce(node):
    plan = cli(node, "plan", str(EXAMPLES))
    assert plan.returncode == 0, plan.stderr
    assert "+ create stream payments.transaction_settled (6 partitions" in plan.stdout
    assert "+ register payments.transaction_settled-value version 1" in plan.stdout
    applied = cli(node, "apply", str(EXAMPLES))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "payments: applied" in applied.stdout
    again = cli(node, "apply", str(EXAMPLES))
    assert again.stdout.count("unchanged") == 4, again.stdout

    topic = "payments.transaction_settled"
    good = (b'{"transaction_id": "t-1", "customer_id": "c-1", "merchant_id": "m-1", '
            b'"amount": 12.5, "currency": "EUR", "settled_at": "2026-11-25T08:00:00Z"}')
    assert produce(node, topic, good) is None
    # transaction_settled dead-letters; fraud_score (ml) does too; ledger_entry (finance) is
    # Avro and rejects: an unframed record there is refused outright.
    assert produce(node, topic, good.replace(b"12.5", b"-3")) is None
    assert "non_negative_amount" in node.log_since_last_start()
    assert produce(node, topic, good.replace(b"EUR", b"JPY")) is None
    assert "known_currency" in node.log_since_last_start()
    err = produce(node, "finance.ledger_entry", b'{"entry_id": "e-1"}')
    assert err is not None and err.code() == KafkaError.INVALID_RECORD

    # State survives a restart: nothing to do.
    node.restart()
    assert cli(node, "plan", str(EXAMPLES)).stdout.count("unchanged") == 4


def test_incompatible_change_is_refused_and_only_changed_domains_are_touched(node, tmp_path):
    assert cli(node, "apply", str(EXAMPLES)).returncode == 0
    dirs = copy_examples(tmp_path)
    schema = dirs / "payments" / "schemas" / "transaction_settled.json"
    schema.write_text(schema.read_text().replace('"money": { "type": "number" }', '"money": { "type": "string" }'))
    manifest = dirs / "marketing" / "domain.yaml"
    manifest.write_text(manifest.read_text().replace("retention: 14d", "retention: 21d"))

    plan = cli(node, "plan", str(dirs))
    assert plan.returncode == 1
    assert "payments: refused, nothing changed" in plan.stdout
    assert ("field 'amount': type number -> string breaks BACKWARD_TRANSITIVE "
            "(the new schema cannot read data written with version 1)") in plan.stdout, plan.stdout
    assert "finance: unchanged" in plan.stdout
    assert "~ set marketing.campaign_click retention.ms = 1814400000" in plan.stdout

    applied = cli(node, "apply", str(dirs))
    assert applied.returncode == 1
    assert "marketing: applied" in applied.stdout
    assert "payments: refused, nothing changed" in applied.stdout
    after = cli(node, "plan", str(EXAMPLES)).stdout
    assert "payments: unchanged" in after, "the refused domain kept its applied state"


def test_broken_manifest_is_reported_with_its_place_and_nothing_is_sent(node, tmp_path):
    dirs = copy_examples(tmp_path)
    manifest = dirs / "ml" / "domain.yaml"
    manifest.write_text(manifest.read_text().replace("freshness: 10m", "freshnes: 10m"))
    out = cli(node, "apply", str(dirs))
    assert out.returncode == 1
    assert "ml/domain.yaml:" in out.stderr and "did you mean 'freshness'?" in out.stderr, out.stderr
    assert "nothing was sent" in out.stderr


def test_dead_letter_stream_keeps_valid_records_and_explains_invalid_ones(node):
    assert cli(node, "apply", str(EXAMPLES)).returncode == 0
    topic = "payments.transaction_settled"
    good = (b'{"transaction_id": "t-1", "customer_id": "c-1", "merchant_id": "m-1", '
            b'"amount": 12.5, "currency": "EUR", "settled_at": "2026-11-25T08:00:00Z"}')
    bad = good.replace(b"12.5", b"-3")
    p = Producer({"bootstrap.servers": node.bootstrap, "linger.ms": 200, "enable.idempotence": True})
    results = []
    for v in [good, bad, good.replace(b"t-1", b"t-2"), bad.replace(b"t-1", b"t-3")]:
        p.produce(topic, value=v, partition=0, on_delivery=lambda e, m: results.append(e))
    p.flush(10)
    assert results == [None] * 4, results
    # The same idempotent producer keeps producing: sequence numbers stayed whole.
    p.produce(topic, value=good.replace(b"t-1", b"t-4"), partition=0, on_delivery=lambda e, m: results.append(e))
    p.flush(10)
    assert results[-1] is None, results[-1]
    stored = [m.value() for m in consume_partitions(node.bootstrap, topic, [0])]
    assert stored == [good, good.replace(b"t-1", b"t-2"), good.replace(b"t-1", b"t-4")]
    dead = consume_partitions(node.bootstrap, topic + ".dlq", [0])
    assert [m.value() for m in dead] == [bad, bad.replace(b"t-1", b"t-3")]
    headers = dict(dead[0].headers())
    assert headers["headwater.rule"] == b"non_negative_amount"
    assert b"payments.transaction_settled-value version 1" in headers["headwater.contract"]
    assert headers["headwater.source"].startswith(b"payments.transaction_settled-0@")


def test_a_domain_streams_subject_changes_only_through_its_domain(node):
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
    from confluent_kafka.schema_registry.error import SchemaRegistryError

    assert cli(node, "apply", str(EXAMPLES)).returncode == 0
    sr = SchemaRegistryClient({"url": node.http_url})
    subject = "payments.transaction_settled-value"
    assert sr.get_latest_version(subject).version == 1, "readable by anyone"
    for change in (
        lambda: sr.register_schema(subject, Schema('{"type": "object"}', "JSON")),
        lambda: sr.delete_subject(subject),
        lambda: sr.set_compatibility(subject, "NONE"),
        lambda: sr.update_mode(subject, "READONLY"),
    ):
        try:
            change()
            raise AssertionError("a domain stream's subject was changed outside its domain")
        except SchemaRegistryError as e:
            assert e.error_code == 42205, e
            assert "domain 'payments'" in e.error_message and "headwater apply" in e.error_message
    node.restart()
    try:
        sr.delete_subject(subject)
        raise AssertionError("ownership must survive a restart")
    except SchemaRegistryError as e:
        assert e.error_code == 42205
