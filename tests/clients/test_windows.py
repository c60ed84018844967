"""Windowed streaming pipelines: marketing's clicks_per_minute counts clicks per campaign in
tumbling one-minute windows of click time. A window is emitted when the watermark (the oldest
partition's newest click time, minus 5 s) passes its end, emitted again for clicks up to 30 s late, and later clicks are
dropped and counted."""

import json
import time

from conftest import node_cli, REPO_ROOT, consume_partitions, run_cli

EXAMPLES = REPO_ROOT / "examples" / "domains"
CLICKS = "marketing.campaign_click"
OUT = "marketing.campaign_clicks_per_minute"

cli = node_cli


def click(campaign, customer, at):
    return {"campaign_id": campaign, "customer_id": customer, "channel": "web",
            "clicked_at": f"2026-11-30T10:{at}Z"}


def advance(at):
    """Clicks of campaign W at `at` from 20 customers: every partition's event time reaches
    `at` (the watermark is the oldest partition's newest event time, less 5 s)."""
    return [click("W", f"w{i}", at) for i in range(20)]


def publish(node, clicks):
    r = cli(node, "publish", CLICKS, stdin="\n".join(map(json.dumps, clicks)))
    assert r.returncode == 0, r.stdout + r.stderr


def windows(node, want, timeout=60):
    """The emitted rows as (campaign, window start minute, clicks, customers), in order."""
    deadline = time.monotonic() + timeout
    rows = []
    while time.monotonic() < deadline:
        msgs = consume_partitions(node.bootstrap, OUT, range(3), allow_gaps=True)
        rows = [r for r in (json.loads(m.value()[5:]) for m in msgs) if r["campaign_id"] != "W"]
        if len(rows) >= want:
            break
        time.sleep(0.3)
    return sorted((r["campaign_id"], r["window_start"][11:16], r["window_end"][11:16],
                   r["clicks"], r["customers"]) for r in rows)


def state(node):
    pipes = json.loads(cli(node, "status", "--output", "json").stdout)["pipelines"]
    return next(p for p in pipes if p["name"] == "clicks_per_minute")


def test_tumbling_windows_close_on_the_watermark_and_take_late_clicks(node):
    r = run_cli("apply", str(EXAMPLES), "--url", node.http_url)
    assert r.returncode == 0, r.stdout + r.stderr
    publish(node, [click("A", "c1", "00:10"), click("A", "c2", "00:20"), click("A", "c1", "00:40"),
                   click("B", "c3", "00:50")] + advance("00:50"))
    # Nothing has closed yet: the watermark is 10:00:45.
    time.sleep(1.0)
    assert windows(node, 0, timeout=1) == []
    # A click at 10:01:20 moves the watermark to 10:01:15: 10:00 closes.
    publish(node, [click("A", "c1", "01:20")] + advance("01:20"))
    assert windows(node, 2) == [("A", "10:00", "10:01", 3, 2), ("B", "10:00", "10:01", 1, 1)]
    # A click at 10:02:30 moves it to 10:02:25: 10:01 closes.
    publish(node, [click("B", "c4", "02:30")] + advance("02:30"))
    assert windows(node, 3) == [("A", "10:00", "10:01", 3, 2), ("A", "10:01", "10:02", 1, 1),
                                ("B", "10:00", "10:01", 1, 1)]
    # 10:01:40 is late but within 30 s of the watermark passing 10:02: 10:01 is emitted again.
    publish(node, [click("A", "c5", "01:40")])
    got = windows(node, 4)
    assert ("A", "10:01", "10:02", 2, 2) in got and len(got) == 4
    # 10:00:30 is later than that (10:01 + 30 s < 10:02:25): dropped and counted.
    publish(node, [click("A", "c6", "00:30"), click("A", "c7", "03:10")] + advance("03:10"))
    got = windows(node, 5)
    assert ("B", "10:02", "10:03", 1, 1) in got and len(got) == 5
    deadline = time.monotonic() + 30
    while state(node).get("late_dropped") != 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert state(node)["late_dropped"] == 1

    # A restart emits nothing twice and keeps the open window (10:03) and the watermark.
    node.kill()
    node.start()
    publish(node, [click("C", "c8", "04:20")] + advance("04:20"))
    got = windows(node, 6)
    assert len(got) == 6 and ("A", "10:03", "10:04", 1, 1) in got, got
