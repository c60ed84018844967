"""Streams for people: `headwater publish` (JSON lines in, each refused line reported with its
number and reason), `headwater tail` (events decoded to JSON, Avro included, with consumer
groups), server-sent events with Last-Event-ID, and `headwater dlq replay` after a fix. What the
CLI writes must be readable by Confluent's deserializers: it is a Kafka produce like any other."""

import json
import shutil
import subprocess
import time
import urllib.request

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.schema_registry.json_schema import JSONDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from conftest import node_cli, REPO_ROOT, consume_partitions, require_binary, run_cli

EXAMPLES = REPO_ROOT / "examples" / "domains"
SETTLED = "payments.transaction_settled"
REFUNDS = "payments.refund_issued"


cli = node_cli


def settled(tid, amount=12.5, currency="EUR", customer="c-1"):
    return json.dumps({"transaction_id": tid, "customer_id": customer, "merchant_id": "m-1",
                       "amount": amount, "currency": currency,
                       "settled_at": "2026-11-25T08:00:00Z"})


def refund(rid, cents=500, currency="EUR"):
    return json.dumps({"refund_id": rid, "transaction_id": "t-1", "customer_id": "c-1",
                       "amount_cents": cents, "currency": currency, "reason": None,
                       "issued_at": 1795598100050})


def applied(node):
    r = run_cli("apply", str(EXAMPLES), "--url", node.http_url)
    assert r.returncode == 0, r.stdout + r.stderr
    return node


def all_partitions(node, topic, n):
    # Dead-lettered lines leave record-less spans at the end of some partitions.
    return consume_partitions(node.bootstrap, topic, range(n), allow_gaps=True)


def test_publish_reports_each_refused_line_and_confluent_clients_read_the_rest(node):
    applied(node)
    lines = "\n".join([settled("t-1"), settled("t-2", amount=-3), "not json", "",
                       settled("t-3", amount="x"), settled("t-4", customer="c-9")]) + "\n"
    r = cli(node, "publish", SETTLED, stdin=lines)
    assert r.returncode == 1, r.stderr
    err = r.stderr
    assert "line 2: dead-lettered to payments.transaction_settled.dlq: non_negative_amount" in err
    assert "line 3: refused: not JSON" in err
    assert "line 5: dead-lettered to payments.transaction_settled.dlq: contract:" in err
    assert "(at /amount)" in err
    assert "published 2 event(s) to payments.transaction_settled from 6 line(s); 1 refused, 2 dead-lettered" in err

    stored = all_partitions(node, SETTLED, 6)
    assert sorted(m.key() for m in stored) == [b"t-1", b"t-4"], "keyed by the manifest's key field"
    sr = SchemaRegistryClient({"url": node.http_url})
    decode = JSONDeserializer(None, schema_registry_client=sr)
    ctx = SerializationContext(SETTLED, MessageField.VALUE)
    values = {m.key(): decode(m.value(), ctx) for m in stored}
    assert values[b"t-4"]["customer_id"] == "c-9"

    dead = all_partitions(node, SETTLED + ".dlq", 1)
    assert [m.key() for m in dead] == [b"t-2", b"t-3"]
    headers = dict(dead[0].headers())
    assert headers["headwater.rule"] == b"non_negative_amount"
    assert b"version 1" in headers["headwater.contract"]


def test_publish_and_tail_avro(node):
    applied(node)
    r = cli(node, "publish", REFUNDS,
            stdin="\n".join([refund("r-1"), refund("r-2", cents=0), refund("r-3", currency="JPY"),
                             refund("r-4", cents=7)]))
    assert r.returncode == 1
    assert "line 2: refused: positive_refund: rule is false" in r.stderr
    assert "line 3: refused: contract: the event does not fit the Avro schema: field 'currency'" in r.stderr
    assert "published 2 event(s)" in r.stderr

    sr = SchemaRegistryClient({"url": node.http_url})
    decode = AvroDeserializer(sr)
    ctx = SerializationContext(REFUNDS, MessageField.VALUE)
    got = sorted(decode(m.value(), ctx)["refund_id"] for m in all_partitions(node, REFUNDS, 3))
    assert got == ["r-1", "r-4"]

    tail = cli(node, "tail", REFUNDS, "--from", "earliest", "--no-follow")
    assert tail.returncode == 0, tail.stderr
    events = [json.loads(line) for line in tail.stdout.splitlines()]
    assert sorted(e["refund_id"] for e in events) == ["r-1", "r-4"]
    assert {e["amount_cents"] for e in events} == {500, 7}
    meta = cli(node, "tail", REFUNDS, "--from", "earliest", "--no-follow", "--meta", "--key", "t-1")
    rows = [json.loads(line) for line in meta.stdout.splitlines()]
    assert len(rows) == 2 and all(r["key"] == "t-1" and r["offset"] >= 0 and r["timestamp"] > 0
                                  for r in rows), rows


def test_tail_group_resumes_where_it_stopped(node):
    applied(node)
    assert cli(node, "publish", SETTLED,
               stdin="\n".join(settled(f"t-{i}") for i in range(5))).returncode == 0
    seen = []
    for want in (2, 2, 1):
        r = cli(node, "tail", SETTLED, "--group", "people", "--from", "earliest",
                "--count", "2", "--no-follow", "--meta")
        assert r.returncode == 0, r.stderr
        rows = [json.loads(line) for line in r.stdout.splitlines()]
        assert len(rows) == want, rows
        seen += [row["key"] for row in rows]
    assert sorted(seen) == [f"t-{i}" for i in range(5)], "each event once across the three runs"
    # The group's position is a Kafka group's committed offsets.
    from conftest import admin_client
    from confluent_kafka import ConsumerGroupTopicPartitions
    admin = admin_client(node.bootstrap)  # kept referenced until the future completes
    fut = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions("people")])
    offsets = fut["people"].result(timeout=10).topic_partitions
    assert sum(tp.offset for tp in offsets if tp.offset > 0) == 5


def test_tail_follows_new_events(node):
    applied(node)
    proc = subprocess.Popen([str(require_binary()), "tail", SETTLED, "--count", "3",
                             "--url", node.http_url],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)  # tail starts at `latest`: let it subscribe first
        assert cli(node, "publish", SETTLED,
                   stdin="\n".join(settled(f"live-{i}") for i in range(3))).returncode == 0
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert sorted(json.loads(line)["transaction_id"] for line in out.splitlines()) == \
        ["live-0", "live-1", "live-2"]


def sse(url, last_event_id=None):
    req = urllib.request.Request(url, headers={"Accept": "text/event-stream"})
    if last_event_id:
        req.add_header("Last-Event-ID", last_event_id)
    events, current = [], {}
    with urllib.request.urlopen(req, timeout=30) as resp:
        for raw in resp:
            line = raw.decode().rstrip("\n")
            if not line:
                if "data" in current:
                    events.append(current)
                current = {}
            elif line.startswith(("id:", "data:", "event:")):
                k, v = line.split(":", 1)
                current[k] = v.strip()
    return events


def test_server_sent_events_resume_with_last_event_id(node):
    applied(node)
    assert cli(node, "publish", SETTLED,
               stdin="\n".join(settled(f"t-{i}") for i in range(10))).returncode == 0
    base = f"{node.http_url}/v1/streams/payments/transaction_settled/events?from=earliest&follow=false"
    first = sse(base + "&limit=4")
    assert len(first) == 4
    rest = sse(base, last_event_id=first[-1]["id"])
    keys = [json.loads(e["data"])["key"] for e in first + rest]
    assert sorted(keys) == sorted(f"t-{i}" for i in range(10)), "no event lost or repeated"


def test_dlq_replay_after_the_rule_is_fixed(node, tmp_path):
    applied(node)
    r = cli(node, "publish", SETTLED, stdin=settled("t-yen", currency="JPY") + "\n" + settled("t-ok"))
    assert "line 1: dead-lettered" in r.stderr and "known_currency" in r.stderr

    before = cli(node, "dlq", "replay", SETTLED)
    assert before.returncode == 1
    assert "replayed 0 dead letter(s) of payments.transaction_settled.dlq (offsets 0..1)" in before.stdout
    assert "offset 0: known_currency" in before.stdout

    fixed = tmp_path / "domains"
    shutil.copytree(EXAMPLES, fixed)
    manifest = fixed / "payments" / "domain.yaml"
    manifest.write_text(manifest.read_text().replace("['USD', 'EUR', 'GBP']", "['USD', 'EUR', 'GBP', 'JPY']"))
    assert run_cli("apply", str(fixed), "--url", node.http_url).returncode == 0

    after = cli(node, "dlq", "replay", SETTLED)
    assert after.returncode == 0, after.stdout + after.stderr
    assert "replayed 1 dead letter(s) of payments.transaction_settled.dlq (offsets 1..2)" in after.stdout
    keys = sorted(m.key() for m in all_partitions(node, SETTLED, 6))
    assert keys == [b"t-ok", b"t-yen"]
    yen = next(m for m in all_partitions(node, SETTLED, 6) if m.key() == b"t-yen")
    assert not any(k.startswith("headwater.") for k, _ in (yen.headers() or [])), \
        "the replayed record carries only its original headers"

    again = cli(node, "dlq", "replay", SETTLED)
    assert "replayed 0 dead letter(s)" in again.stdout and again.returncode == 0
    assert len(all_partitions(node, SETTLED, 6)) == 2, "a second replay replays nothing twice"
    explicit = cli(node, "dlq", "replay", REFUNDS)
    assert explicit.returncode == 1 and "has no dead-letter stream" in explicit.stderr
