"""Feature views: ml's customer_spend keeps per-customer features over sliding windows of
payments' settled transactions, served over HTTP by key and in batches and by `headwater view
get`; it survives kills without double-counting and can be rebuilt from its input."""

import json
import random
import time
import urllib.error
import urllib.request

from conftest import node_cli, REPO_ROOT, run_cli

EXAMPLES = REPO_ROOT / "examples" / "domains"
SETTLED = "payments.transaction_settled"
VIEW = "ml.customer_spend"

cli = node_cli


def txn(i, customer, amount, merchant):
    return {"transaction_id": f"t-{i}", "customer_id": customer, "merchant_id": merchant,
            "amount": float(amount), "currency": "EUR", "settled_at": "2026-11-30T08:00:00Z"}


def http(node, path, body=None):
    req = urllib.request.Request(node.http_url + path, method="POST" if body is not None else "GET",
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def expected(events):
    out = {}
    for e in events:
        f = out.setdefault(e["customer_id"], {"n": 0, "sum": 0.0, "max": None, "min": None,
                                              "merchants": set(), "last": None})
        f["n"] += 1
        f["sum"] += e["amount"]
        f["max"] = e["amount"] if f["max"] is None else max(f["max"], e["amount"])
        f["min"] = e["amount"] if f["min"] is None else min(f["min"], e["amount"])
        f["merchants"].add(e["merchant_id"])
        f["last"] = e["merchant_id"]
    return out


def wait_for_events(node, customers, want_total, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = http(node, "/v1/views/ml/customer_spend", {"keys": customers})
        if status == 200:
            total = sum(r["events"] for r in body["results"] if r)
            if total >= want_total:
                return {r["key"]: r for r in body["results"] if r}
        time.sleep(0.2)
    raise AssertionError(f"view did not reach {want_total} events: {body}")


def publish(node, events):
    r = cli(node, "publish", SETTLED, stdin="\n".join(map(json.dumps, events)))
    assert r.returncode == 0, r.stdout + r.stderr


def test_view_serves_features_by_key_in_batches_and_on_the_cli(node):
    r = run_cli("apply", str(EXAMPLES), "--url", node.http_url)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "+ deploy pipeline ml.customer_spend (streaming, reads payments.transaction_settled, writes view customer_spend)" in r.stdout
    rng = random.Random(3)
    events = [txn(i, f"c-{i % 7}", rng.randint(1, 900), f"m-{rng.randint(1, 5)}")
              for i in range(300)]
    publish(node, events)
    # `last` goes by event time (the record timestamp): a later publish is the latest.
    time.sleep(0.01)
    final = [txn(1000 + i, f"c-{i}", 5, f"m-final-{i}") for i in range(7)]
    publish(node, final)
    events += final
    customers = sorted({e["customer_id"] for e in events})
    rows = wait_for_events(node, customers, len(events))
    want = expected(events)
    for c in customers:
        f, w = rows[c]["features"], want[c]
        assert f["txn_count_7d"] == w["n"]
        assert abs(f["spend_30d"] - w["sum"]) < 1e-6
        assert abs(f["avg_amount_30d"] - w["sum"] / w["n"]) < 1e-6
        assert f["max_amount_7d"] == w["max"] and f["min_amount_7d"] == w["min"]
        assert f["merchants_30d"] == len(w["merchants"])
        assert f["last_merchant"] == w["last"]

    status, one = http(node, "/v1/views/ml/customer_spend/c-3")
    assert status == 200 and one["features"]["txn_count_7d"] == want["c-3"]["n"]
    status, missing = http(node, "/v1/views/ml/customer_spend/nobody")
    assert status == 404 and "customer_id 'nobody'" in missing["error"]
    status, batch = http(node, "/v1/views/ml/customer_spend", {"keys": ["c-1", "nobody", "c-2"]})
    assert status == 200
    assert [r and r["key"] for r in batch["results"]] == ["c-1", None, "c-2"]
    # curl -d sends a form content type: the body is read as JSON all the same.
    req = urllib.request.Request(node.http_url + "/v1/views/ml/customer_spend", method="POST",
                                 data=b'{"keys":["c-4"]}',
                                 headers={"content-type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert json.loads(r.read())["results"][0]["key"] == "c-4"
    status, bad = http(node, "/v1/views/ml/customer_spend", {"key": "c-1"})
    assert status == 422 and "keys" in bad["error"]
    status, unknown = http(node, "/v1/views/ml/nothing/c-1")
    assert status == 404 and "no view 'ml.nothing'" in unknown["error"]

    got = cli(node, "view", "get", VIEW, "c-1", "nobody")
    assert got.returncode == 1
    line = json.loads(got.stdout.splitlines()[0])
    assert line["key"] == "c-1" and line["features"]["txn_count_7d"] == want["c-1"]["n"]
    assert "no events for key 'nobody'" in got.stderr
    listed = cli(node, "view", "list")
    assert "ml.customer_spend" in listed.stdout and "merchants_30d=approx_distinct(merchant_id) over 30d" in listed.stdout

    # The view's pipeline is a subscriber like any other: lag 0 once it has caught up.
    status = json.loads(cli(node, "status", "--output", "json").stdout)
    settled = next(s for s in status["streams"] if s["stream"] == SETTLED)
    group = next(s for s in settled["subscribers"] if s["name"] == "_pipeline.ml.customer_spend")
    assert group["lag_records"] == 0


def test_view_counts_every_event_once_across_kills_and_rebuilds_the_same(node):
    assert run_cli("apply", str(EXAMPLES), "--url", node.http_url).returncode == 0
    rng = random.Random(11)
    sent = []
    for _ in range(8):
        batch = [txn(len(sent) + i, f"c-{rng.randint(0, 40)}", rng.randint(1, 500), "m-1")
                 for i in range(rng.randint(1500, 3000))]
        publish(node, batch)
        sent += batch
        time.sleep(rng.uniform(0.0, 0.05))
        node.kill()
        node.start()
    customers = sorted({e["customer_id"] for e in sent})
    rows = wait_for_events(node, customers, len(sent), timeout=120)
    want = expected(sent)
    for c in customers:
        assert rows[c]["events"] == want[c]["n"], c
        assert abs(rows[c]["features"]["spend_30d"] - want[c]["sum"]) < 1e-6, c

    r = cli(node, "rebuild", VIEW)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"rebuilt customer_spend from {len(sent)} input record(s)" in r.stdout
    _, after = http(node, "/v1/views/ml/customer_spend", {"keys": customers})
    assert {x["key"]: x["features"] for x in after["results"]} == {c: rows[c]["features"] for c in customers}

    refused = cli(node, "rebuild", "marketing.high_value_purchases")
    assert refused.returncode != 0 and "not rebuilt" in refused.stderr


def test_a_view_naming_a_missing_field_is_refused_at_plan(node, tmp_path):
    import shutil
    domains = tmp_path / "domains"
    shutil.copytree(EXAMPLES, domains)
    manifest = domains / "ml" / "domain.yaml"
    manifest.write_text(manifest.read_text().replace("of: merchant_id }", "of: merchant }", 1))
    r = run_cli("plan", str(domains), "--url", node.http_url)
    assert r.returncode != 0
    assert "the view's feature field 'merchant' is not a column of its input" in r.stdout + r.stderr
