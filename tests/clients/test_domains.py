"""Domains end to end: `headwater plan` and `apply` on the example domains, quality rules
enforced at produce, an incompatible schema change refused with its explanation, and only the
changed domain touched."""

import shutil
from pathlib import Path

from confluent_kafka import KafkaError, Producer

from conftest import REPO_ROOT, run_cli

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
    negative = good.replace(b"12.5", b"-3")
    err = produce(node, topic, negative)
    assert err is not None and err.code() == KafkaError.INVALID_RECORD
    assert "non_negative_amount" in node.log_since_last_start()
    err = produce(node, topic, good.replace(b"EUR", b"JPY"))
    assert err is not None and err.code() == KafkaError.INVALID_RECORD
    assert "known_currency" in node.log_since_last_start()

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
