"""Governance through the CLI and real clients: the catalog lists what the example domains
declare and what the node has seen (a confluent-kafka producer's client id, a consumer group),
searchable by name, field or tag; the audit trail records who applied what and `headwater audit
verify` names a modified or removed entry of an exported trail."""

import json
import time

from confluent_kafka import Consumer, Producer

from conftest import node_cli, REPO_ROOT, run_cli

EXAMPLES = REPO_ROOT / "examples" / "domains"
CLICKS = "marketing.campaign_click"

cli = node_cli


def apply_examples(node):
    r = run_cli("apply", str(EXAMPLES), "--url", node.http_url)
    assert r.returncode == 0, r.stdout + r.stderr


def catalog(node, *args):
    r = cli(node, "catalog", *args, "--output", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def stream_of(cat, name):
    for d in cat["domains"]:
        for s in d["streams"]:
            if s["stream"] == name:
                return d, s
    raise AssertionError(f"{name} not in the catalog")


def test_catalog_lists_declared_and_observed_and_searches(node):
    # Without authentication the node says so at start.
    assert "NO AUTHENTICATION" in node.log_text()
    apply_examples(node)
    producer = Producer({"bootstrap.servers": node.bootstrap, "client.id": "click-tracker"})
    click = {"campaign_id": "bf-2026", "customer_id": "c-1", "channel": "email",
             "url": "https://shop.example/bf", "clicked_at": "2026-11-30T08:00:00Z"}
    producer.produce(CLICKS, json.dumps(click).encode())
    assert producer.flush(10) == 0
    consumer = Consumer({"bootstrap.servers": node.bootstrap, "group.id": "growth-dashboard",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([CLICKS])
    deadline = time.monotonic() + 30
    msg = None
    while msg is None and time.monotonic() < deadline:
        m = consumer.poll(0.5)
        if m is not None and not m.error():
            msg = m
    assert msg is not None, "no click consumed"
    consumer.commit(message=msg, asynchronous=False)
    consumer.close()

    cat = catalog(node)
    domain, clicks = stream_of(cat, CLICKS)
    assert domain["domain"] == "marketing"
    assert domain["owners"] == ["team:growth"] and domain["stewards"]
    assert domain["governance"] == "self-service"
    assert clicks["format"] == "JSON" and clicks["versions"] == [1]
    fields = {f["name"]: f for f in clicks["fields"]}
    assert fields["customer_id"]["classification"] == "pii"
    assert fields["campaign_id"]["type"] == "string" and fields["campaign_id"]["classification"] is None
    assert "pii" in clicks["tags"]
    assert "click-tracker" in clicks["producers_seen"]
    assert "growth-dashboard" in clicks["consumers_seen"]
    assert "_pipeline.marketing.clicks_per_minute" in clicks["consumers_seen"]
    finance = next(d for d in cat["domains"] if d["domain"] == "finance")
    assert finance["governance"] == "central"
    pipes = {p["pipeline"]: p for d in cat["domains"] for p in d["pipelines"]}
    assert pipes["ml.customer_spend"]["output_kind"] == "view"
    assert pipes["finance.daily_settlement_totals"]["output"] == "finance.settlement_totals"

    pii = catalog(node, "pii")["matches"]
    named = {m["name"] for m in pii}
    assert {"payments.transaction_settled.customer_id", "payments.transaction_settled.card_last4",
            "marketing.campaign_click.customer_id"} <= named
    assert all(m["kind"] == "field" for m in pii)
    by_field = {m["name"] for m in catalog(node, "card_last4")["matches"]}
    assert by_field == {"payments.transaction_settled.card_last4"}
    r = cli(node, "catalog", "customer_spend")
    assert r.returncode == 0 and "view      ml.customer_spend" in r.stdout, r.stdout
    r = cli(node, "catalog", "no-such-thing-anywhere")
    assert r.returncode == 1 and "nothing in the catalog matches" in r.stdout


def test_audit_log_names_who_changed_what_and_verify_catches_tampering(node, tmp_path):
    apply_examples(node)
    r = cli(node, "audit", "log", "--domain", "payments")
    assert r.returncode == 0, r.stderr
    assert "domain.apply" in r.stdout and "schema.register" in r.stdout
    assert "payments.transaction_settled-value" in r.stdout
    r = cli(node, "audit", "verify")
    assert r.returncode == 0 and "audit trail intact" in r.stdout, r.stdout

    r = cli(node, "audit", "log", "--output", "json")
    lines = r.stdout.splitlines()
    entries = [json.loads(x) for x in lines]
    assert [e["seq"] for e in entries] == list(range(len(entries)))
    export = tmp_path / "audit.jsonl"
    export.write_text(r.stdout)
    assert cli(node, "audit", "verify", "--file", str(export)).returncode == 0

    # One byte of one entry changed.
    apply_line = next(i for i, e in enumerate(entries) if e["action"] == "domain.apply")
    tampered = list(lines)
    tampered[apply_line] = tampered[apply_line].replace('"domain.apply"', '"domain.applY"')
    export.write_text("\n".join(tampered) + "\n")
    r = cli(node, "audit", "verify", "--file", str(export))
    assert r.returncode == 1, r.stdout
    assert f"line {apply_line + 1}: entry {apply_line} " in r.stdout and "was modified" in r.stdout

    # One entry removed.
    removed = lines[:3] + lines[4:]
    export.write_text("\n".join(removed) + "\n")
    r = cli(node, "audit", "verify", "--file", str(export))
    assert r.returncode == 1 and "entry 3 is missing" in r.stdout, r.stdout


def test_lineage_follows_a_field_into_the_view_and_back_to_its_producer(node):
    apply_examples(node)
    producer = Producer({"bootstrap.servers": node.bootstrap, "client.id": "settlement-service"})
    txn = {"transaction_id": "t-1", "customer_id": "c-1", "merchant_id": "m-1", "amount": 12.5,
           "currency": "EUR", "settled_at": "2026-11-30T08:00:00Z"}
    producer.produce("payments.transaction_settled", json.dumps(txn).encode(), key=b"t-1")
    assert producer.flush(10) == 0

    r = cli(node, "lineage", "payments.transaction_settled.amount", "--downstream")
    assert r.returncode == 0, r.stderr
    for line in [
        "field payments.transaction_settled.amount -> field ml.customer_spend.spend_30d  (via pipeline ml.customer_spend)",
        "field payments.transaction_settled.amount -> field ml.customer_spend.avg_amount_30d  (via pipeline ml.customer_spend)",
        "field payments.transaction_settled.amount -> field finance.settlement_totals.total  (via pipeline finance.daily_settlement_totals)",
        "field payments.transaction_settled.amount -> field marketing.high_value_purchase.amount  (via pipeline marketing.high_value_purchases)",
    ]:
        assert line in r.stdout, r.stdout
    # merchant_id feeds other features, not spend.
    assert "merchants_30d" not in r.stdout

    r = cli(node, "lineage", "ml.customer_spend", "--upstream")
    assert r.returncode == 0, r.stderr
    assert "stream payments.transaction_settled -> pipeline ml.customer_spend" in r.stdout
    assert "producer settlement-service -> stream payments.transaction_settled  (observed)" in r.stdout

    dot = cli(node, "lineage", "payments.transaction_settled", "--output", "dot").stdout
    assert dot.startswith("digraph lineage {") and dot.rstrip().endswith("}")
    assert '"stream payments.transaction_settled" -> "pipeline ml.customer_spend";' in dot
    mermaid = cli(node, "lineage", "payments.transaction_settled", "--output", "mermaid").stdout
    assert mermaid.startswith("graph LR")
    assert '["pipeline ml.customer_spend"]' in mermaid and "-->" in mermaid

    r = cli(node, "lineage", "no.such.thing")
    assert r.returncode != 0 and "nothing named 'no.such.thing'" in r.stderr


def test_plan_lists_the_readers_a_breaking_schema_change_would_hit(node, tmp_path):
    import shutil
    apply_examples(node)
    # A consumer group with a position on the stream.
    producer = Producer({"bootstrap.servers": node.bootstrap})
    txn = {"transaction_id": "t-1", "customer_id": "c-1", "merchant_id": "m-1", "amount": 12.5,
           "currency": "EUR", "settled_at": "2026-11-30T08:00:00Z"}
    producer.produce("payments.transaction_settled", json.dumps(txn).encode(), key=b"t-1")
    assert producer.flush(10) == 0
    consumer = Consumer({"bootstrap.servers": node.bootstrap, "group.id": "fraud-audit",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe(["payments.transaction_settled"])
    deadline, msg = time.monotonic() + 30, None
    while msg is None and time.monotonic() < deadline:
        m = consumer.poll(0.5)
        if m is not None and not m.error():
            msg = m
    assert msg is not None
    consumer.commit(message=msg, asynchronous=False)
    consumer.close()

    changed = tmp_path / "domains"
    shutil.copytree(EXAMPLES, changed)
    schema_path = changed / "payments" / "schemas" / "transaction_settled.json"
    schema = json.loads(schema_path.read_text())
    schema["properties"]["amount"] = {"type": "string"}
    del schema["properties"]["merchant_id"]
    schema["required"] = [f for f in schema["required"] if f != "merchant_id"]
    schema_path.write_text(json.dumps(schema))

    r = run_cli("plan", str(changed), "--url", node.http_url)
    out = r.stdout
    assert r.returncode == 1, out
    assert "impact of payments.transaction_settled version 1 -> next: removes 'merchant_id', 'amount' number -> string" in out
    assert "pipeline ml.customer_spend uses 'merchant_id' (removed), 'amount' number -> string: breaks" in out
    assert "pipeline finance.daily_settlement_totals uses 'amount' number -> string: breaks, its SQL no longer plans" in out
    assert "sum(Utf8)" in out
    assert "pipeline marketing.high_value_purchases uses 'amount' number -> string: still plans" in out
    assert "consumer group fraud-audit breaks until it upgrades" in out
    assert "reader domain finance (readers) breaks until it upgrades" in out
    assert "error: stream payments.transaction_settled: field 'amount': type number -> string breaks BACKWARD_TRANSITIVE" in out

    # A change that touches no field a reader uses lists no impact.
    schema = json.loads((EXAMPLES / "payments" / "schemas" / "transaction_settled.json").read_text())
    schema["properties"]["note"] = {"type": "string"}
    schema_path.write_text(json.dumps(schema))
    r = run_cli("plan", str(changed), "--url", node.http_url)
    assert r.returncode == 0 and "impact of" not in r.stdout, r.stdout


def test_metrics_count_traffic_refusals_lag_freshness_and_pipelines(node):
    import urllib.request
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    apply_examples(node)
    good = {"transaction_id": "t-1", "customer_id": "c-1", "merchant_id": "m-1", "amount": 12.5,
            "currency": "EUR", "settled_at": "2026-11-30T08:00:00Z"}
    bad = dict(good, transaction_id="t-2", amount=-1.0)
    r = cli(node, "publish", "payments.transaction_settled",
            stdin="\n".join(json.dumps(x) for x in [good, good | {"transaction_id": "t-3"}, bad]))
    # A dead-lettered line makes publish exit 1; the two valid ones are stored.
    assert "published 2 event(s)" in r.stderr and "1 dead-lettered" in r.stderr, r.stdout + r.stderr
    consumer = Consumer({"bootstrap.servers": node.bootstrap, "group.id": "metrics-reader",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe(["payments.transaction_settled"])
    got, deadline = 0, time.monotonic() + 30
    while got < 2 and time.monotonic() < deadline:
        m = consumer.poll(0.5)
        if m is not None and not m.error():
            got += 1
            if got == 1:
                consumer.commit(message=m, asynchronous=False)
    consumer.close()
    assert got == 2

    with urllib.request.urlopen(node.http_url + "/metrics", timeout=10) as resp:
        assert resp.headers["content-type"].startswith("application/openmetrics-text")
        text = resp.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    topic = (("topic", "payments.transaction_settled"),)
    assert samples[("headwater_produced_records_total", topic)] == 2
    assert samples[("headwater_produced_bytes_total", topic)] > 0
    assert samples[("headwater_fetched_records_total", topic)] >= 2
    assert samples[("headwater_invalid_records_total", (("rule", "non_negative_amount"), ("topic", "payments.transaction_settled")))] == 1
    assert samples[("headwater_dead_lettered_records_total", topic)] == 1
    lag = (("kind", "group"), ("stream", "payments.transaction_settled"), ("subscriber", "metrics-reader"))
    assert samples[("headwater_lag_records", lag)] >= 1  # offsets behind, as Kafka counts lag
    stream = (("domain", "payments"), ("stream", "payments.transaction_settled"))
    assert samples[("headwater_stream_freshness_sla_seconds", stream)] == 300
    assert samples[("headwater_stream_fresh", stream)] == 1
    assert samples[("headwater_pipeline_state", (("pipeline", "ml.customer_spend"), ("state", "streaming")))] == 1
    assert samples[("headwater_pipeline_failures", (("pipeline", "ml.customer_spend"),))] == 0
