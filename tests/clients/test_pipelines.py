"""Batch pipelines and SQL: finance's daily settlement table computed from payments' stream by
`headwater run` (DataFusion SQL), written as hive-partitioned Parquet that pyarrow and DuckDB
read as it is, queried with `headwater sql`; a pipeline may read only streams that admit its
domain; a failing run backs off while other pipelines keep working."""

import json
import shutil
import subprocess

import duckdb
import pyarrow.dataset as ds

from conftest import examples_with_broken_pipeline, node_cli, REPO_ROOT, require_binary, run_cli

EXAMPLES = REPO_ROOT / "examples" / "domains"
SETTLED = "payments.transaction_settled"


cli = node_cli


def settled(i, day, currency, amount):
    return json.dumps({"transaction_id": f"t-{i}", "customer_id": f"c-{i % 7}", "merchant_id": "m-1",
                       "amount": amount, "currency": currency,
                       "settled_at": f"2026-11-{day:02d}T{i % 24:02d}:00:00Z"})


def events():
    out, want = [], {}
    for i in range(300):
        day, cur, amount = 20 + i % 3, ["EUR", "USD", "GBP"][i % 2], round(1 + i * 0.5, 2)
        out.append(settled(i, day, cur, amount))
        k = (f"2026-11-{day:02d}", cur)
        total, n = want.get(k, (0.0, 0))
        want[k] = (total + amount, n + 1)
    return out, want


def test_batch_table_from_a_stream_read_by_pyarrow_duckdb_and_sql(node):
    r = run_cli("apply", str(EXAMPLES), "--url", node.http_url)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "+ deploy pipeline finance.daily_settlement_totals (batch, schedule \"0 2 * * *\"" in r.stdout
    lines, want = events()
    assert cli(node, "publish", SETTLED, stdin="\n".join(lines)).returncode == 0

    run = cli(node, "run", "finance.daily_settlement_totals")
    assert run.returncode == 0, run.stderr
    assert f"wrote {len(want)} row(s) to table finance.settlement_totals from 300 input record(s)" in run.stdout

    table_dir = node.data_dir / "tables" / "finance" / "settlement_totals"
    assert sorted(p.name for p in table_dir.iterdir() if p.is_dir()) == \
        ["day=2026-11-20", "day=2026-11-21", "day=2026-11-22"], "hive partitions by day"

    got = ds.dataset(table_dir, format="parquet", partitioning="hive").to_table().to_pylist()
    by_key = {(str(r["day"]), r["currency"]): (r["total"], r["n"]) for r in got}
    assert by_key.keys() == want.keys()
    for k, (total, n) in want.items():
        assert by_key[k][1] == n and abs(by_key[k][0] - total) < 1e-6, (k, by_key[k], total)

    rows = duckdb.sql(
        f"SELECT day, currency, total, n FROM read_parquet('{table_dir}/**/*.parquet', hive_partitioning=true) "
        "ORDER BY day, currency").fetchall()
    assert len(rows) == len(want) and sum(r[3] for r in rows) == 300

    q = cli(node, "sql", "SELECT currency, sum(n) AS n FROM finance.settlement_totals GROUP BY currency ORDER BY currency",
            "--output", "json")
    assert q.returncode == 0, q.stderr
    assert [json.loads(x) for x in q.stdout.splitlines()] == [{"currency": "EUR", "n": 150}, {"currency": "USD", "n": 150}]
    # A stream is a table too, with its records' partition, offset, timestamp and key.
    q = cli(node, "sql", f"SELECT count(*) AS n, count(DISTINCT _key) AS keys, max(amount) AS top FROM {SETTLED}")
    assert "| 300 | 300  | 150.5 |" in q.stdout.replace("  ", " ") or "300" in q.stdout, q.stdout
    csv = cli(node, "sql", f"SELECT transaction_id, amount FROM {SETTLED} WHERE amount > 149 ORDER BY amount", "--output", "csv")
    assert csv.stdout.splitlines() == ["transaction_id,amount", "t-297,149.5", "t-298,150.0", "t-299,150.5"], csv.stdout

    # Running again replaces the table whole (no duplicated output).
    assert cli(node, "run", "finance.daily_settlement_totals").returncode == 0
    again = ds.dataset(table_dir, format="parquet", partitioning="hive").to_table()
    assert again.num_rows == len(want)
    status = cli(node, "pipelines")
    assert "finance.daily_settlement_totals" in status.stdout and "waiting" in status.stdout, status.stdout


def test_a_pipeline_reading_a_stream_that_does_not_admit_its_domain_is_refused(node, tmp_path):
    dirs = tmp_path / "domains"
    shutil.copytree(EXAMPLES, dirs)
    refunds = dirs / "ml" / "domain.yaml"
    refunds.write_text(refunds.read_text() + """
  refunds_per_customer:
    mode: batch
    inputs: [payments.refund_issued]
    sql: SELECT customer_id, count(*) AS n FROM payments.refund_issued GROUP BY 1
    output: { table: refunds_per_customer }
""")
    plan = run_cli("plan", str(dirs), "--url", node.http_url)
    assert plan.returncode == 1
    assert "domain 'ml' may not read 'payments.refund_issued': its readers are [finance]" in plan.stdout + plan.stderr


def test_sql_that_does_not_plan_is_refused_at_plan_time(node, tmp_path):
    dirs = tmp_path / "domains"
    shutil.copytree(EXAMPLES, dirs)
    finance = dirs / "finance" / "domain.yaml"
    finance.write_text(finance.read_text().replace("sum(amount) AS total", "sum(amount_typo) AS total"))
    plan = run_cli("plan", str(dirs), "--url", node.http_url)
    assert plan.returncode == 1, plan.stdout
    assert "pipeline finance.daily_settlement_totals: the SQL does not plan" in plan.stdout
    assert "amount_typo" in plan.stdout


def test_status_shows_lag_and_consistency_waits_for_every_subscriber(node):
    import threading
    import time
    import urllib.request
    from confluent_kafka import Consumer, TopicPartition

    assert run_cli("apply", str(EXAMPLES), "--url", node.http_url).returncode == 0
    lines, _ = events()
    assert cli(node, "publish", SETTLED, stdin="\n".join(lines[:50])).returncode == 0
    c = Consumer({"bootstrap.servers": node.bootstrap, "group.id": "fraud-check",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.assign([TopicPartition(SETTLED, p, 0) for p in range(6)])
    got = []
    while len(got) < 50:
        m = c.poll(1.0)
        if m is not None and not m.error():
            got.append(m)
    c.commit(asynchronous=False)

    status = json.loads(cli(node, "status", "--output", "json").stdout)
    settled = next(s for s in status["streams"] if s["stream"] == SETTLED)
    subs = {s["name"]: s for s in settled["subscribers"]}
    assert subs["fraud-check"]["lag_records"] == 0
    assert subs["finance.daily_settlement_totals"]["lag_records"] == 50, "never run: all 50 behind"
    assert subs["finance.daily_settlement_totals"]["lag_seconds"] >= 0
    assert settled["fresh"] is True
    text = cli(node, "status").stdout
    assert "pipeline finance.daily_settlement_totals: lag 50 records" in text, text

    # Read-your-writes: a client that just produced asks whether every subscriber has it.
    last = max(got, key=lambda m: m.offset())
    url = (f"{node.http_url}/v1/consistency?stream={SETTLED}&partition={last.partition()}"
           f"&offset={last.offset()}")
    answer = json.loads(urllib.request.urlopen(url, timeout=10).read())
    assert answer["processed"] is False, "the batch pipeline has not run yet"
    threading.Timer(1.0, lambda: cli(node, "run", "finance.daily_settlement_totals")).start()
    t0 = time.monotonic()
    answer = json.loads(urllib.request.urlopen(url + "&wait=20s", timeout=30).read())
    assert answer["processed"] is True, answer
    assert time.monotonic() - t0 < 20
    c.close()


def test_a_failing_pipeline_backs_off_while_others_run(node, tmp_path):
    dirs = examples_with_broken_pipeline(tmp_path)
    finance = dirs / "finance" / "domain.yaml"
    assert run_cli("apply", str(dirs), "--url", node.http_url).returncode == 0
    lines, _ = events()
    assert cli(node, "publish", SETTLED, stdin="\n".join(lines[:20])).returncode == 0
    bad = cli(node, "run", "finance.broken_cast")
    assert bad.returncode == 1 and "finance.broken_cast failed" in bad.stderr, bad.stderr
    assert "Cannot cast" in bad.stderr or "cast" in bad.stderr.lower(), bad.stderr
    good = cli(node, "run", "finance.daily_settlement_totals")
    assert good.returncode == 0, good.stderr
    states = {f"{p['domain']}.{p['name']}": p for p in
              json.loads(__import__("urllib.request").request.urlopen(f"{node.http_url}/v1/pipelines").read())}
    broken = states["finance.broken_cast"]
    assert broken["state"] == "backing_off" and broken["failures"] >= 1 and broken["attempt"] >= 1
    assert states["finance.daily_settlement_totals"]["state"] == "waiting"
    assert states["finance.daily_settlement_totals"]["last_run"]["records"] == 20
    # Changing one pipeline redeploys only that one.
    before = states["finance.daily_settlement_totals"]["deployed_at_ms"]
    finance.write_text(finance.read_text().replace("CAST(currency AS INT)", "currency"))
    applied = run_cli("apply", str(dirs), "--url", node.http_url)
    assert "~ redeploy pipeline finance.broken_cast" in applied.stdout, applied.stdout
    assert "daily_settlement_totals" not in applied.stdout
    states = {f"{p['domain']}.{p['name']}": p for p in
              json.loads(__import__("urllib.request").request.urlopen(f"{node.http_url}/v1/pipelines").read())}
    assert states["finance.daily_settlement_totals"]["deployed_at_ms"] == before
    assert states["finance.broken_cast"]["failures"] == 0
    assert cli(node, "run", "finance.broken_cast").returncode == 0


def test_generate_feeds_all_three_patterns(node):
    assert run_cli("apply", str(EXAMPLES), "--url", node.http_url).returncode == 0
    gen = cli(node, "generate", "--count", "2000", "--invalid", "0.02")
    assert gen.returncode == 0, gen.stderr
    lines = dict(line.split(": ", 1) for line in gen.stdout.splitlines())
    published = int(lines[SETTLED].split()[0])
    assert 1900 < published < 2000, gen.stdout
    assert int(lines["payments.refund_issued"].split()[0]) > 0
    assert int(lines["marketing.campaign_click"].split()[0]) > 0
    run = cli(node, "run", "finance.daily_settlement_totals")
    assert run.returncode == 0 and f"from {published} input record(s)" in run.stdout, run.stdout + run.stderr
    q = cli(node, "sql", f"SELECT count(*) AS n FROM {SETTLED} WHERE amount >= 500", "--output", "json")
    want = json.loads(q.stdout.splitlines()[0])["n"]
    import time
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        got = json.loads(cli(node, "sql", "SELECT count(*) AS n FROM marketing.high_value_purchase",
                             "--output", "json").stdout.splitlines()[0])["n"]
        if got == want:
            break
        time.sleep(0.3)
    assert got == want
