"""Isolation between domains, measured while the other domain is under load.

1. Applying domain A (marketing) several times (retention, partitions, a new stream, a compatible
   schema change, a quality rule) never alters, pauses or restarts anything of domain B
   (payments) while B's producer and consumer group run: every B record is acknowledged and
   consumed exactly once in order, B's topics, configs, subjects and stored manifest are
   identical before and after, `apply` reports `payments: unchanged` each time, B's consumer
   group is never rebalanced, and the longest gap between B's acknowledgements during the
   applies stays loosely bounded.

2. A flood of invalid records to one domain's streams (payments: a dead-letter stream and a
   reject stream) plus a stream of malformed Kafka frames does not take another domain's
   (marketing's) producer and consumer below 90 % of the throughput they reach without it.
   B's client runs in its own process and each flooder in its own, so neither the GIL nor the
   flood's Python work starves B's client; B offers a steady rate, as a real producer with its
   own demand does.

Both tests print what they measured (run with -s to see it).
"""

from __future__ import annotations

import io
import json
import os
import multiprocessing
import statistics
import shutil
import socket
import struct
import threading
import time
import urllib.request
from pathlib import Path

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import ConfigResource, ResourceType

from conftest import REPO_ROOT, admin_client, run_cli, unique

EXAMPLES = REPO_ROOT / "examples" / "domains"


def apply(node, path):
    return run_cli("apply", str(path), "--url", node.http_url)


def http_json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def percentile(values, q):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def max_gap(times, start, end):
    """Longest interval between consecutive timestamps (sorted) that overlaps [start, end],
    counting the window's edges: no event at all in the window is a gap of its length."""
    pts = [start] + [t for t in times if start < t < end] + [end]
    return max(b - a for a, b in zip(pts, pts[1:]))


def broker_connections(stats_json):
    """{broker name: (connects, disconnects)} from a librdkafka statistics report."""
    stats = json.loads(stats_json)
    return {name: (b.get("connects", 0), b.get("disconnects", 0))
            for name, b in stats.get("brokers", {}).items()}


# ---------------------------------------------------------------------------
# B's load: a producer at a steady offered rate and a consumer group, each on its own thread.


class SteadyProducer(threading.Thread):
    """Offers `rate` records/s (as due by the clock: a delayed tick catches up), with acks=all
    and idempotence, until stop(); records every acknowledgement's time."""

    def __init__(self, bootstrap, topic, make_value, rate, tick=0.005, **conf):
        super().__init__(daemon=True)
        self.topic, self.make_value, self.rate, self.tick = topic, make_value, rate, tick
        self.conf = {"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                     "linger.ms": 2, "message.timeout.ms": 30000, "socket.timeout.ms": 10000}
        self.conf.update(conf)
        self.sent_at = []        # index = seq
        self.acks = []           # (ack time, seq, partition, offset)
        self.errors = []
        self.produced = 0
        self.unflushed = None
        self.connections = {}
        self.conf.setdefault("statistics.interval.ms", 500)
        self.conf["stats_cb"] = self._on_stats
        self._halt = threading.Event()

    def _on_stats(self, stats_json):
        self.connections = broker_connections(stats_json)

    def _on_delivery(self, err, msg):
        now = time.monotonic()
        if err is not None:
            self.errors.append(str(err))
        else:
            self.acks.append((now, int(msg.key()), msg.partition(), msg.offset()))

    def run(self):
        p = Producer(self.conf)
        t0 = time.monotonic()
        seq = 0
        while not self._halt.is_set():
            due = int((time.monotonic() - t0) * self.rate)
            while seq < due:
                try:
                    p.produce(self.topic, key=str(seq).encode(), value=self.make_value(seq),
                              on_delivery=self._on_delivery)
                except BufferError:
                    break
                self.sent_at.append(time.monotonic())
                seq += 1
            p.poll(self.tick)
        self.produced = seq
        self.unflushed = p.flush(30)

    def stop(self):
        self._halt.set()
        self.join(60)
        assert not self.is_alive(), "producer did not stop"


class GroupReader(threading.Thread):
    """A consumer group member that records each record's arrival time, and every assignment
    and revocation it sees."""

    def __init__(self, bootstrap, topic, group=None):
        super().__init__(daemon=True)
        self.topic = topic
        self.conf = {"bootstrap.servers": bootstrap, "group.id": group or unique("b-group"),
                     "auto.offset.reset": "earliest", "enable.auto.commit": True,
                     "socket.timeout.ms": 10000, "session.timeout.ms": 10000,
                     "heartbeat.interval.ms": 500, "fetch.wait.max.ms": 50,
                     "statistics.interval.ms": 500,
                     "stats_cb": self._on_stats}
        self.connections = {}
        self.got = []            # (arrival time, key as int, partition, offset)
        self.errors = []
        self.assigned = threading.Event()
        self.assignments = []
        self.revocations = []
        self.revocations_while_running = []
        self.connections_while_running = {}
        self.expect = None       # set when the producer is done: stop after this many + a grace
        self._halt = threading.Event()

    def _on_stats(self, stats_json):
        self.connections = broker_connections(stats_json)

    def run(self):
        c = Consumer(self.conf)

        def on_assign(consumer, parts):
            self.assignments.append(sorted(tp.partition for tp in parts))
            self.assigned.set()

        def on_revoke(consumer, parts):
            self.revocations.append(sorted(tp.partition for tp in parts))

        c.subscribe([self.topic], on_assign=on_assign, on_revoke=on_revoke)
        done_at = None
        try:
            while not self._halt.is_set():
                for m in c.consume(1000, 0.05):
                    if m.error():
                        self.errors.append(str(m.error()))
                    else:
                        self.got.append((time.monotonic(), int(m.key()), m.partition(), m.offset()))
                if self.expect is not None and len(self.got) >= self.expect and done_at is None:
                    done_at = time.monotonic()  # keep reading a little: duplicates would show
                if done_at is not None and time.monotonic() - done_at > 0.5:
                    break
        finally:
            self.revocations_while_running = list(self.revocations)  # close() revokes too
            self.connections_while_running = dict(self.connections)
            c.close()

    def finish(self, expect, timeout=60):
        self.expect = expect
        self.join(timeout)
        if self.is_alive():
            self._halt.set()
            self.join(10)
            raise AssertionError(f"consumer got {len(self.got)} of {expect} records in {timeout}s")


def check_exactly_once_in_order(acks, got, label):
    """Every acknowledged record consumed once, at the acknowledged offset, and per partition
    in the order it was produced (keys are the producer's sequence numbers)."""
    acked = {(p, o): seq for _, seq, p, o in acks}
    assert len(acked) == len(acks), f"{label}: two acks for one offset"
    consumed = [(p, o, seq) for _, seq, p, o in got]
    seen = {}
    for p, o, seq in consumed:
        assert (p, o) not in seen, f"{label}: partition {p} offset {o} consumed twice"
        seen[(p, o)] = seq
    missing = set(acked) - set(seen)
    assert not missing, f"{label}: {len(missing)} acknowledged records never consumed, e.g. {sorted(missing)[:5]}"
    extra = set(seen) - set(acked)
    assert not extra, f"{label}: {len(extra)} consumed records were never acknowledged, e.g. {sorted(extra)[:5]}"
    wrong = [(po, acked[po], seen[po]) for po in acked if acked[po] != seen[po]]
    assert not wrong, f"{label}: records at the wrong offset (partition/offset, acked seq, read seq): {wrong[:5]}"
    per_part = {}
    for p, o, seq in consumed:
        per_part.setdefault(p, []).append((o, seq))
    for p, recs in per_part.items():
        offsets = [o for o, _ in recs]
        assert offsets == list(range(len(offsets))), f"{label}: partition {p} read out of order / with holes"
        seqs = [s for _, s in recs]
        assert seqs == sorted(seqs), f"{label}: partition {p} holds records out of produce order"


# ---------------------------------------------------------------------------
# 1. applying one domain under the other's load


def transaction(seq):
    return json.dumps({"transaction_id": f"t-{seq}", "customer_id": f"c-{seq % 97}",
                       "merchant_id": "m-1", "amount": 12.5 + seq % 100, "currency": "EUR",
                       "settled_at": "2026-11-25T08:00:00Z", "batch_id": seq}).encode()


def domain_state(node, domain):
    """Everything the node holds for one domain: its topics with partition counts and leaders,
    their configs, its subjects with every version, schema and compatibility, and its stored
    manifest."""
    admin = admin_client(node.bootstrap)
    md = admin.list_topics(timeout=10)
    topics = sorted(t for t in md.topics if t.startswith(domain + "."))
    parts = {t: sorted((p.id, p.leader) for p in md.topics[t].partitions.values()) for t in topics}
    res = [ConfigResource(ResourceType.TOPIC, t) for t in topics]
    futures = admin.describe_configs(res, request_timeout=30)
    configs = {r.name: {k: v.value for k, v in f.result(timeout=30).items()}
               for r, f in futures.items()}
    subjects = {}
    for s in http_json(f"{node.http_url}/subjects"):
        if s.startswith(domain + "."):
            versions = http_json(f"{node.http_url}/subjects/{s}/versions")
            subjects[s] = {
                "versions": versions,
                "schemas": [http_json(f"{node.http_url}/subjects/{s}/versions/{v}")
                            for v in versions],
                "config": http_json(f"{node.http_url}/config/{s}"),
            }
    manifest = [m for m in http_json(f"{node.http_url}/v1/domains") if m.get("domain") == domain]
    assert len(manifest) == 1 and subjects and topics, f"domain {domain} is not applied"
    return {"topics": parts, "configs": configs, "subjects": subjects, "manifest": manifest}


EMAIL_OPEN_V1 = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["campaign_id", "customer_id", "opened_at"],
    "properties": {"campaign_id": {"type": "string"}, "customer_id": {"type": "string"},
                   "opened_at": {"type": "string"}},
}
NEW_STREAM = """
  {name}:
    description: An opened campaign email.
    key: customer_id
    partitions: 2
    retention: 7d
    contract:
      format: json-schema
      schema: schemas/{name}.json
      compatibility: backward
    quality:
      on_invalid: dead-letter
      rules:
        - {{ name: has_campaign, check: "campaign_id != ''" }}
    readers: [payments]
"""
EXTRA_RULE = "- { name: has_campaign, check: \"campaign_id != ''\" }\n        "
APPLY_ROUNDS = 3


def marketing_changes(dirs: Path, rounds: int = APPLY_ROUNDS):
    """Changes to marketing only, applied one after the other: (label, edit). Each round changes
    campaign_click's retention, grows its partitions by one, adds a stream with a closed JSON
    schema, then adds an optional field to that schema (a BACKWARD-compatible version 2), and
    adds or removes a quality rule."""
    manifest = dirs / "marketing" / "domain.yaml"
    schemas = dirs / "marketing" / "schemas"

    def edit(old, new):
        text = manifest.read_text()
        assert old in text, old
        manifest.write_text(text.replace(old, new, 1))

    def new_stream(name):
        (schemas / f"{name}.json").write_text(json.dumps(EMAIL_OPEN_V1, indent=2))
        text = manifest.read_text()
        streams, sep, pipelines = text.partition("\npipelines:")
        manifest.write_text(streams.rstrip("\n") + "\n" + NEW_STREAM.format(name=name) + sep + pipelines)

    def add_optional_field(name):
        v2 = json.loads(json.dumps(EMAIL_OPEN_V1))
        v2["properties"]["device"] = {"type": "string"}
        (schemas / f"{name}.json").write_text(json.dumps(v2, indent=2))

    changes = []
    for r in range(rounds):
        days = (14 + 7 * r, 21 + 7 * r)
        name = f"email_open_{r}"
        plain, with_rule = "- { name: known_channel,", EXTRA_RULE + "- { name: known_channel,"
        rule_change = (("add a quality rule", plain, with_rule) if r % 2 == 0
                       else ("remove a quality rule", with_rule, plain))
        changes += [
            (f"retention {days[0]}d -> {days[1]}d",
             lambda d=days: edit(f"retention: {d[0]}d", f"retention: {d[1]}d")),
            (f"partitions {3 + r} -> {4 + r}",
             lambda r=r: edit(f"partitions: {3 + r}", f"partitions: {4 + r}")),
            (f"new stream {name}", lambda n=name: new_stream(n)),
            (f"{name} v2 adds an optional field", lambda n=name: add_optional_field(n)),
            (rule_change[0], lambda a=rule_change[1], b=rule_change[2]: edit(a, b)),
        ]
    return changes


def test_applying_one_domain_never_touches_another_under_load(node, tmp_path):
    first = apply(node, EXAMPLES)
    assert first.returncode == 0, first.stdout + first.stderr
    dirs = tmp_path / "domains"
    shutil.copytree(EXAMPLES, dirs)
    topic = "payments.transaction_settled"
    before = domain_state(node, "payments")

    reader = GroupReader(node.bootstrap, topic)
    reader.start()
    assert reader.assigned.wait(30), "B's consumer was never assigned partitions"
    prod = SteadyProducer(node.bootstrap, topic, transaction, rate=2000)
    prod.start()
    deadline = time.monotonic() + 20
    while not prod.acks:
        assert time.monotonic() < deadline, f"no acknowledgement for B's records: {prod.errors[:3]}"
        time.sleep(0.05)
    t_load = prod.acks[0][0]
    time.sleep(4.0)

    outputs = []
    t_apply_start = time.monotonic()
    for label, change in marketing_changes(dirs):
        change()
        t0 = time.monotonic()
        out = apply(node, dirs)
        outputs.append((label, time.monotonic() - t0, out))
        assert out.returncode == 0, f"{label}: {out.stdout}{out.stderr}"
        assert "marketing: applied" in out.stdout, f"{label}: {out.stdout}"
        assert "payments: unchanged" in out.stdout, f"{label}: {out.stdout}"
        time.sleep(0.1)
    t_apply_end = time.monotonic()
    time.sleep(2.0)
    prod.stop()
    reader.finish(len(prod.acks))
    after = domain_state(node, "payments")

    ack_times = sorted(a[0] for a in prod.acks)
    read_times = sorted(g[0] for g in reader.got)
    win_before = (t_load + 1.0, t_apply_start)
    win_during = (t_apply_start, t_apply_end)
    gap = {
        "ack before": max_gap(ack_times, *win_before),
        "ack during": max_gap(ack_times, *win_during),
        "read before": max_gap(read_times, *win_before),
        "read during": max_gap(read_times, *win_during),
    }
    lat = {}
    for name, (a, b) in (("before", win_before), ("during", win_during)):
        lats = [t - prod.sent_at[seq] for t, seq, _, _ in prod.acks if a <= t <= b]
        lat[name] = (len(lats) / (b - a), percentile(lats, 0.5), percentile(lats, 0.99), max(lats))
    print(f"\nB load: {len(prod.acks)} records acked, {len(reader.got)} consumed, "
          f"{prod.produced} produced")
    print(f"  connections (connects, disconnects): producer {prod.connections}, "
          f"consumer {reader.connections_while_running}")
    for label, secs, _ in outputs:
        print(f"  apply '{label}': {secs * 1000:.0f} ms")
    for name in ("before", "during"):
        rate, p50, p99, mx = lat[name]
        print(f"  {name:6} applies ({win_before[1] - win_before[0] if name == 'before' else win_during[1] - win_during[0]:.1f} s): "
              f"{rate:.0f} acks/s, ack latency p50 {p50 * 1000:.1f} ms p99 {p99 * 1000:.1f} ms "
              f"max {mx * 1000:.1f} ms; longest ack gap {gap['ack ' + name] * 1000:.1f} ms, "
              f"longest read gap {gap['read ' + name] * 1000:.1f} ms")

    assert prod.errors == [], f"B's produce failed: {prod.errors[:5]}"
    assert prod.unflushed == 0 and len(prod.acks) == prod.produced
    assert reader.errors == [], f"B's consumer saw errors: {reader.errors[:5]}"
    check_exactly_once_in_order(prod.acks, reader.got, "B")
    assert len(reader.assignments) == 1 and reader.revocations_while_running == [], (
        f"B's group was rebalanced: assignments {reader.assignments}, "
        f"revocations {reader.revocations_while_running}")
    for who, conns in (("producer", prod.connections), ("consumer", reader.connections_while_running)):
        assert conns and all(d == 0 for _, d in conns.values()), (
            f"B's {who} lost a connection (connects, disconnects per broker): {conns}")
    assert after == before, "payments changed while only marketing was applied"
    assert gap["ack during"] < 1.0, f"B's acknowledgements paused {gap['ack during']:.3f} s during applies"
    assert gap["read during"] < 1.0, f"B's consumer paused {gap['read during']:.3f} s during applies"

    # The applies did change marketing.
    md = admin_client(node.bootstrap).list_topics(timeout=10)
    assert len(md.topics["marketing.campaign_click"].partitions) == 3 + APPLY_ROUNDS
    for r in range(APPLY_ROUNDS):
        assert f"marketing.email_open_{r}" in md.topics and f"marketing.email_open_{r}.dlq" in md.topics
        assert http_json(f"{node.http_url}/subjects/marketing.email_open_{r}-value/versions") == [1, 2]
    assert "marketing: unchanged" in apply(node, dirs).stdout


# ---------------------------------------------------------------------------
# 2. a flood of invalid records and malformed frames on one domain, throughput of another

B_TOPIC = "marketing.campaign_click"
B_RATE = 10_000          # records/s offered by B's producer
WINDOW_S = 8.0           # each measurement window
FLOOD_STREAMS = ["payments.transaction_settled", "payments.refund_issued"]


def click(seq):
    return (b'{"campaign_id": "cmp-%d", "customer_id": "c-%d", "channel": "email", '
            b'"url": "https://example.com/x", "clicked_at": "2026-11-25T08:00:00Z", "n": %d}'
            % (seq % 50, seq % 1000, seq))


def b_client(bootstrap, topic, rate, ready, stop, out):
    """B's producer and consumer, in a process of their own."""
    reader = GroupReader(bootstrap, topic)
    reader.start()
    if not reader.assigned.wait(30):
        out.put({"error": "B's consumer was never assigned partitions"})
        return
    prod = SteadyProducer(bootstrap, topic, click, rate=rate, **{"linger.ms": 5})
    prod.start()
    deadline = time.monotonic() + 20
    while not prod.acks and time.monotonic() < deadline:
        time.sleep(0.05)
    ready.set()
    stop.wait(120)
    prod.stop()
    try:
        reader.finish(len(prod.acks))
        finish_error = None
    except AssertionError as e:
        finish_error = str(e)
    out.put({
        "error": finish_error,
        "acks": prod.acks, "sent_at": prod.sent_at, "produced": prod.produced,
        "unflushed": prod.unflushed, "produce_errors": prod.errors[:20],
        "n_produce_errors": len(prod.errors),
        "got": reader.got, "consume_errors": reader.errors[:20],
        "assignments": reader.assignments, "revocations": reader.revocations_while_running,
    })


BAD_TRANSACTIONS = [
    b'{"transaction_id": "t-x", "customer_id": "c", "merchant_id": "m", "amount": -3, '
    b'"currency": "EUR", "settled_at": "2026-11-25T08:00:00Z"}',                 # rule
    b'{"transaction_id": "t-x", "customer_id": "c", "merchant_id": "m", "amount": 1, '
    b'"currency": "JPY", "settled_at": "2026-11-25T08:00:00Z"}',                 # rule
    b'{"transaction_id": "", "amount": "lots"}',                                  # schema
    b"not json at all " * 8,                                                      # syntax
]


def bad_refunds(node):
    """Invalid values for payments.refund_issued (Avro, reject): rule-breaking but well-formed
    Avro under the right schema id, a garbage Avro body, another domain's schema id, an
    unknown schema id, unframed JSON, and an empty value."""
    import fastavro

    latest = http_json(f"{node.http_url}/subjects/payments.refund_issued-value/versions/latest")
    other = http_json(f"{node.http_url}/subjects/marketing.campaign_click-value/versions/latest")
    schema = fastavro.parse_schema(json.loads(latest["schema"]))
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, {
        "refund_id": "r-1", "transaction_id": "t-1", "customer_id": "c-1", "amount_cents": -500,
        "currency": "EUR", "reason": None, "issued_at": 1795598000000})
    frame = lambda schema_id, body: b"\x00" + struct.pack(">I", schema_id) + body  # noqa: E731
    return [
        frame(latest["id"], buf.getvalue()),                 # rule positive_refund
        frame(latest["id"], b"\xff" * 40),                   # undecodable Avro
        frame(other["id"], b'{"campaign_id": "x"}'),         # a schema of another subject
        frame(0x7FFFFF, b"\x02" * 40),                       # unknown schema id
        b'{"refund_id": "r-1", "amount_cents": 5}',          # unframed
        b"",                                                 # empty
    ]


# sent, acknowledged, failed; failed with INVALID_RECORD, with MSG_SIZE_TOO_LARGE, other
REC_KEYS = ("sent", "acked", "failed", "invalid_record", "too_large", "other")
FRAME_KEYS = ("conns", "connect_failed")


def flood_records(bootstrap, topic, values, go, stop, counters, conf=None):
    """Produces invalid records to `topic` as fast as this process can (librdkafka's default
    batching: up to 1 MB per partition per request)."""
    from confluent_kafka import KafkaError

    # The flooding *client* yields the CPU to B's client: on a 2-core machine the test's own
    # processes would otherwise starve each other, and what is measured is the node.
    os.nice(10)

    p = Producer({"bootstrap.servers": bootstrap, "acks": 1, "linger.ms": 5,
                  "batch.num.messages": 10000, "queue.buffering.max.messages": 200000,
                  "retries": 0, "message.timeout.ms": 30000, "socket.timeout.ms": 10000,
                  **(conf or {})})
    c = [0] * len(REC_KEYS)

    def cb(err, msg):
        if err is None:
            c[1] += 1
            return
        c[2] += 1
        if err.code() == KafkaError.INVALID_RECORD:
            c[3] += 1
        elif err.code() == KafkaError.MSG_SIZE_TOO_LARGE:
            c[4] += 1
        else:
            c[5] += 1

    go.wait(120)
    i, n = 0, len(values)
    while not stop.is_set():
        for _ in range(1000):
            try:
                p.produce(topic, value=values[i % n], key=b"k%d" % (i % 64), on_delivery=cb)
            except BufferError:
                p.poll(0.005)
                break
            i += 1
        p.poll(0)
        c[0] = i
        counters[:] = c
    p.flush(10)
    counters[:] = c


def header_v1(api_key, version, corr_id, client_id=b"flood"):
    return struct.pack(">hhih", api_key, version, corr_id, len(client_id)) + client_id


def malformed_frames():
    frame = lambda payload: struct.pack(">i", len(payload)) + payload  # noqa: E731
    return [
        bytes((i * 97 + 13) % 256 for i in range(300)),                        # garbage bytes
        struct.pack(">i", 0x7FFFFFF0) + b"\x00" * 64,                           # oversized length
        struct.pack(">i", 200 * 1024 * 1024) + header_v1(0, 7, 1),              # over the limit
        struct.pack(">i", -5) + b"\x00" * 8,                                    # negative length
        frame(b"\x00\x12\x00"),                                                 # too short
        frame(struct.pack(">hhih", 18, 0, 77, 1000) + b"abc"),                  # client id overrun
        frame(header_v1(0, 7, 78) + b"\xde\xad\xbe\xef" * 64),                  # Produce, garbage body
        frame(header_v1(3, 9, 79) + b"\xff" * 32),                              # Metadata, garbage body
        struct.pack(">i", 4096) + header_v1(0, 7, 80) + b"\x00" * 100,          # truncated frame
    ]


def flood_frames(addr, go, stop, counters):
    """Opens connections and sends a malformed frame on each, in a loop; truncated frames are
    left half-open (up to 32 at a time, oldest closed first)."""
    os.nice(10)  # as in flood_records: the node is measured, not the test's processes
    frames = malformed_frames()
    go.wait(120)
    conns, failed, i = 0, 0, 0
    half_open = []
    linger0 = struct.pack("ii", 1, 0)  # close with RST: no TIME_WAIT pile-up on the port range
    while not stop.is_set():
        try:
            s = socket.create_connection(addr, timeout=2)
        except OSError:
            failed += 1
            counters[:] = [conns, failed]
            continue
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger0)
        try:
            s.sendall(frames[i % len(frames)])
        except OSError:
            pass
        if i % len(frames) == len(frames) - 1:
            half_open.append(s)
            if len(half_open) > 32:
                half_open.pop(0).close()
        else:
            s.close()
        i += 1
        conns += 1
        if conns % 20 == 0:
            counters[:] = [conns, failed]
    for s in half_open:
        s.close()
    counters[:] = [conns, failed]


def new_connection_round_trip(addr, timeout=15.0):
    """Seconds for an ApiVersions request on a fresh connection (accept + one request)."""
    t0 = time.monotonic()
    with socket.create_connection(addr, timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(struct.pack(">i", 14) + header_v1(18, 0, 1, b"ping"))
        if not s.recv(4):
            raise AssertionError("ApiVersions connection closed")
    return time.monotonic() - t0


class RoundTrips(threading.Thread):
    """Measures new_connection_round_trip every 0.5 s until stopped."""

    def __init__(self, addr):
        super().__init__(daemon=True)
        self.addr, self.times, self.halt = addr, [], threading.Event()

    def run(self):
        while not self.halt.is_set():
            try:
                self.times.append(new_connection_round_trip(self.addr))
            except (OSError, AssertionError):
                self.times.append(float("inf"))
            self.halt.wait(0.5)

    def stop(self):
        self.halt.set()
        self.join(30)
        return self.times


def window_stats(data, a, b):
    acks = [(t, seq) for t, seq, _, _ in data["acks"] if a <= t < b]
    sent_at = data["sent_at"]
    lats = [t - sent_at[seq] for t, seq in acks]
    reads = [t for t, _, _, _ in data["got"] if a <= t < b]
    ack_times = sorted(t for t, _, _, _ in data["acks"])

    def sustained(times):
        # The median of the window's per-second counts: one stall of this shared 2-core VM
        # (or of a client process starved by the flood's own clients) moves the mean over the
        # window, not the rate B keeps up second after second.
        counts = [0] * max(1, int(b - a))
        for t in times:
            i = int(t - a)
            if 0 <= i < len(counts):
                counts[i] += 1
        return statistics.median(counts)

    return {
        "produce": len(acks) / (b - a),
        "consume": len(reads) / (b - a),
        "produce_sustained": sustained([t for t, _ in acks]),
        "consume_sustained": sustained(reads),
        "p50": percentile(lats, 0.5),
        "p99": percentile(lats, 0.99),
        "max_gap": max_gap(ack_times, a, b),
    }


def test_flood_on_one_domain_keeps_anothers_throughput(node):
    applied = apply(node, EXAMPLES)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    ctx = multiprocessing.get_context("spawn")
    ready, stop_b = ctx.Event(), ctx.Event()
    go, stop_flood = ctx.Event(), ctx.Event()
    out = ctx.Queue()
    flood_values = [BAD_TRANSACTIONS, bad_refunds(node)]
    record_counters = [ctx.RawArray("q", len(REC_KEYS)) for _ in FLOOD_STREAMS]
    frame_counters = ctx.RawArray("q", len(FRAME_KEYS))
    b = ctx.Process(target=b_client, args=(node.bootstrap, B_TOPIC, B_RATE, ready, stop_b, out),
                    daemon=True)
    flooders = [ctx.Process(target=flood_records, args=(node.bootstrap, t, v, go, stop_flood, c),
                            daemon=True)
                for t, v, c in zip(FLOOD_STREAMS, flood_values, record_counters)]
    flooders.append(ctx.Process(target=flood_frames, args=(node.addr, go, stop_flood, frame_counters),
                                daemon=True))
    procs = [b] + flooders

    def snapshot():
        return ([dict(zip(REC_KEYS, c)) for c in record_counters],
                dict(zip(FRAME_KEYS, frame_counters)))

    try:
        for p in procs:
            p.start()  # the flooders wait for `go`: starting them costs nothing in B's windows
        assert ready.wait(60), "B's client did not start"
        time.sleep(2.0)  # warm-up: B at its steady rate
        pings = RoundTrips(node.addr)
        t_base = time.monotonic()
        pings.start()
        time.sleep(WINDOW_S)
        t_base_end = time.monotonic()
        base_pings = pings.stop()
        go.set()
        time.sleep(1.0)  # the flood ramps up
        flood_at_start = snapshot()
        pings = RoundTrips(node.addr)
        t_flood = time.monotonic()
        pings.start()
        time.sleep(WINDOW_S)
        t_flood_end = time.monotonic()
        flood_at_end = snapshot()
        stop_flood.set()
        flood_pings = pings.stop()
        for p in flooders:
            p.join(30)
        stop_b.set()
        data = out.get(timeout=120)
        b.join(30)
    finally:
        stop_flood.set()
        go.set()
        stop_b.set()
        for p in procs:
            if p.is_alive():
                p.kill()

    assert node.is_running(), "the node died under the flood"
    assert "acks" in data, data.get("error")
    base = window_stats(data, t_base, t_base_end)
    flood = window_stats(data, t_flood, t_flood_end)
    span = t_flood_end - t_flood
    (rec_start, frames_start), (rec_end, frames_end) = flood_at_start, flood_at_end
    rate = lambda a, z, k: (z[k] - a[k]) / span  # noqa: E731
    print(f"\nB ({B_TOPIC}) offered {B_RATE} records/s; windows of {WINDOW_S:.0f} s")
    for name, st, rt in (("without flood", base, base_pings), ("with flood", flood, flood_pings)):
        print(f"  {name:13}: produce {st['produce']:6.0f} acks/s, consume {st['consume']:6.0f} "
              f"records/s, ack latency p50 {st['p50'] * 1000:7.1f} ms p99 {st['p99'] * 1000:7.1f} ms, "
              f"longest ack gap {st['max_gap'] * 1000:7.1f} ms; new-connection ApiVersions "
              f"max {max(rt) * 1000:.0f} ms ({len(rt)} tries)")
    print(f"  ratio        : produce {flood['produce'] / base['produce']:.3f}, "
          f"consume {flood['consume'] / base['consume']:.3f} (window means); sustained "
          f"(median per second) produce {flood['produce_sustained'] / base['produce_sustained']:.3f}, "
          f"consume {flood['consume_sustained'] / base['consume_sustained']:.3f}")
    for t, a, z in zip(FLOOD_STREAMS, rec_start, rec_end):
        print(f"  flood {t}: {rate(a, z, 'sent'):.0f} invalid records/s sent; per s "
              f"{rate(a, z, 'acked'):.0f} accepted (dead-lettered), "
              f"{rate(a, z, 'invalid_record'):.0f} INVALID_RECORD, "
              f"{rate(a, z, 'too_large'):.0f} MSG_SIZE_TOO_LARGE, {rate(a, z, 'other'):.0f} other")
    print(f"  flood malformed frames: {rate(frames_start, frames_end, 'conns'):.0f} connections/s "
          f"({frames_end['connect_failed']} connects failed)")
    print(f"  B's consumer group: assignments {data['assignments']}, revocations {data['revocations']}")

    # B's records: none lost, duplicated or reordered, whatever the flood did.
    assert data.get("error") is None, data.get("error")
    assert data["n_produce_errors"] == 0, f"B's produce failed: {data['produce_errors']}"
    assert data["unflushed"] == 0 and len(data["acks"]) == data["produced"]
    assert data["consume_errors"] == [], data["consume_errors"]
    check_exactly_once_in_order(data["acks"], data["got"], "B")
    assert base["produce"] > 0.9 * B_RATE, f"B did not reach its offered rate without flood: {base}"
    assert flood["produce_sustained"] >= 0.9 * base["produce_sustained"], (
        f"B's sustained produce throughput fell to {flood['produce_sustained']:.0f}/s under the "
        f"flood (without: {base['produce_sustained']:.0f}/s; window means {flood['produce']:.0f} "
        f"and {base['produce']:.0f})")
    assert flood["consume_sustained"] >= 0.9 * base["consume_sustained"], (
        f"B's sustained consume throughput fell to {flood['consume_sustained']:.0f}/s under the "
        f"flood (without: {base['consume_sustained']:.0f}/s; window means {flood['consume']:.0f} "
        f"and {base['consume']:.0f})")
    assert len(data["assignments"]) == 1 and data["revocations"] == [], (
        f"B's consumer group was rebalanced under the flood: assignments {data['assignments']}, "
        f"revocations {data['revocations']}")
    # The flood did happen, and hit its streams as their modes say.
    for t, a, z in zip(FLOOD_STREAMS, rec_start, rec_end):
        assert rate(a, z, "sent") > B_RATE, f"the flood to {t} was weaker than B: {a} -> {z}"
    assert rec_end[0]["acked"] > 0, "payments.transaction_settled must dead-letter invalid records"
    assert rec_end[1]["acked"] == 0 and rec_end[1]["invalid_record"] > 0, (
        f"payments.refund_issued must refuse invalid records: {rec_end[1]}")
    assert frames_end["conns"] - frames_start["conns"] > 100, "the malformed-frame flood did not run"
