"""Streaming pipelines: marketing's high_value_purchases filters payments' settled transactions
into its own stream as they arrive, through the stream's contract, reading as consumer group
`_pipeline.marketing.high_value_purchases`; killing the node mid-pipeline loses and duplicates
nothing."""

import json
import random
import subprocess
import time

from conftest import node_cli, REPO_ROOT, consume_partitions, require_binary, run_cli

EXAMPLES = REPO_ROOT / "examples" / "domains"
SETTLED = "payments.transaction_settled"
OUT = "marketing.high_value_purchase"


cli = node_cli


def event(i):
    return {"transaction_id": f"t-{i}", "customer_id": f"c-{i % 11}", "merchant_id": "m-1",
            "amount": float((i * 37) % 1000), "currency": "EUR",
            "settled_at": "2026-11-25T08:00:00Z"}


def output_ids(node):
    msgs = consume_partitions(node.bootstrap, OUT, range(3), allow_gaps=True)
    # Values are Confluent-framed JSON (magic byte, 4-byte schema id).
    return [json.loads(m.value()[5:])["transaction_id"] for m in msgs]


def wait_for_output(node, want, timeout=60):
    deadline = time.monotonic() + timeout
    got = []
    while time.monotonic() < deadline:
        q = cli(node, "sql", f"SELECT count(*) AS n FROM {OUT}", "--output", "json")
        if q.returncode == 0 and json.loads(q.stdout.splitlines()[0])["n"] >= want:
            break
        time.sleep(0.3)
    got = output_ids(node)
    return got


def test_streaming_pipeline_filters_into_a_stream(node):
    r = run_cli("apply", str(EXAMPLES), "--url", node.http_url)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "+ deploy pipeline marketing.high_value_purchases (streaming" in r.stdout
    events = [event(i) for i in range(200)]
    assert cli(node, "publish", SETTLED, stdin="\n".join(map(json.dumps, events))).returncode == 0
    want = sorted(e["transaction_id"] for e in events if e["amount"] >= 500)
    got = wait_for_output(node, len(want))
    assert sorted(got) == want
    status = json.loads(cli(node, "status", "--output", "json").stdout)
    settled = next(s for s in status["streams"] if s["stream"] == SETTLED)
    group = next(s for s in settled["subscribers"] if s["name"] == "_pipeline.marketing.high_value_purchases")
    assert group["lag_records"] == 0
    pipes = {p["name"]: p for p in status["pipelines"]}
    assert pipes["high_value_purchases"]["state"] == "streaming"
    assert pipes["high_value_purchases"]["records_in"] >= 200


def test_killing_the_node_mid_pipeline_loses_and_duplicates_nothing(node):
    assert run_cli("apply", str(EXAMPLES), "--url", node.http_url).returncode == 0
    rng = random.Random(7)
    sent = []
    redone = 0
    for round_ in range(12):
        batch = [event(len(sent) + i) for i in range(rng.randint(2000, 4000))]
        r = cli(node, "publish", SETTLED, stdin="\n".join(map(json.dumps, batch)))
        assert r.returncode == 0, r.stderr
        sent += batch
        # The pipeline starts on the new records within milliseconds: kill it while it works.
        time.sleep(rng.uniform(0.0, 0.03))
        node.kill()
        node.start()
        redone = node.log_text().count("redoing the micro-batch")
    want = sorted(e["transaction_id"] for e in sent if e["amount"] >= 500)
    got = wait_for_output(node, len(want), timeout=120)
    assert len(got) == len(set(got)), f"{len(got) - len(set(got))} duplicated outputs"
    assert sorted(got) == want, f"missing {len(set(want) - set(got))}"
    print(f"\n{len(sent)} events, {len(want)} outputs, {redone} interrupted micro-batches redone")
