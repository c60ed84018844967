"""Crash test: idempotent producers with acks=all keep writing while the node is
SIGKILLed and restarted over and over; at the end every acknowledged record is in
the log exactly once, at the offset it was acknowledged with, and each
producer's records are in order within each partition.

HEADWATER_CRASH_CYCLES (default 20) sets the number of kill/restart cycles,
HEADWATER_CRASH_SEED fixes the random schedule (printed on every run).
"""

import os
import random
import time

import pytest
from confluent_kafka import KafkaException

from conftest import consume_partitions, create_topic, producer

CYCLES = int(os.environ.get("HEADWATER_CRASH_CYCLES", "20"))
PARTITIONS = 3
CYCLE_PROGRESS_TIMEOUT_S = 60
MAX_OUTSTANDING = 1500


class TrackedProducer:
    def __init__(self, idx, bootstrap, rng):
        self.idx = idx
        self.seq = 0
        self.outstanding = 0
        self.acked = {}      # value -> (partition, offset)
        self.failed = {}     # value -> error
        self.fatal = []
        self.cycle_acks = 0
        self.p = producer(bootstrap, **{
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": rng.choice([0, 1, 5, 10]),
            "batch.num.messages": rng.choice([10, 100, 1000]),
            "message.timeout.ms": 300000,
            "request.timeout.ms": 10000,
            "reconnect.backoff.ms": 20,
            "reconnect.backoff.max.ms": 300,
            "retry.backoff.ms": 20,
            "retry.backoff.max.ms": 300,
            "error_cb": self.on_error,
            "log_level": 2,  # connection-refused noise while the node is down is expected
        })

    def on_error(self, err):
        if err.fatal():
            self.fatal.append(err)

    def on_delivery(self, err, msg):
        self.outstanding -= 1
        if err is not None:
            self.failed[msg.value()] = err
            return
        # librdkafka reports a retried batch the broker answers with
        # DUPLICATE_SEQUENCE_NUMBER as delivered, but without an offset: such a
        # record is checked for presence (exactly once) only.
        off = msg.offset() if msg.offset() >= 0 else None
        self.acked[msg.value()] = (msg.partition(), off)
        self.cycle_acks += 1

    def produce_some(self, topic, rng, n):
        for _ in range(n):
            if self.outstanding >= MAX_OUTSTANDING:
                break
            partition = rng.randrange(PARTITIONS)
            value = f"{self.idx}:{self.seq}:{partition}".encode()
            try:
                self.p.produce(topic, key=str(self.idx).encode(), value=value,
                               partition=partition, on_delivery=self.on_delivery)
            except BufferError:
                break
            except KafkaException as e:
                raise AssertionError(f"producer {self.idx} refused to produce: {e}; "
                                     f"fatal errors: {self.fatal}")
            self.seq += 1
            self.outstanding += 1
        self.p.poll(0)

    def check_fatal(self):
        assert not self.fatal, f"producer {self.idx} hit fatal error(s): {self.fatal}"


@pytest.mark.timeout(300 + CYCLES * 20)
def test_crash_recovery_keeps_acknowledged_records(make_node):
    seed = int(os.environ.get("HEADWATER_CRASH_SEED", str(int(time.time() * 1000) % 10**9)))
    print(f"HEADWATER_CRASH_SEED={seed} cycles={CYCLES}")
    rng = random.Random(seed)

    node = make_node(config='[log]\nfsync = "always"\n')
    topic = create_topic(node.bootstrap, partitions=PARTITIONS)
    producers = [TrackedProducer(i, node.bootstrap, rng) for i in range(rng.randint(2, 4))]

    def pump():
        """Produce and serve callbacks until the condition holds."""
        for tp in producers:
            tp.produce_some(topic, rng, rng.randint(1, 50))
        for tp in producers:
            tp.p.poll(0.002)
            tp.check_fatal()

    for cycle in range(CYCLES):
        for tp in producers:
            tp.cycle_acks = 0
        target = rng.randint(1, 300)
        deadline = time.monotonic() + CYCLE_PROGRESS_TIMEOUT_S
        while sum(tp.cycle_acks for tp in producers) < target:
            assert time.monotonic() < deadline, (
                f"cycle {cycle}: only {sum(tp.cycle_acks for tp in producers)} of {target} "
                f"acks within {CYCLE_PROGRESS_TIMEOUT_S}s after restart (seed {seed})")
            pump()
        # Keep writing for a random moment so the kill lands mid-traffic.
        until = time.monotonic() + rng.uniform(0, 0.2)
        while time.monotonic() < until:
            pump()
        node.kill()
        # Sometimes keep queueing while the node is down.
        until = time.monotonic() + rng.choice([0, 0, 0.05, 0.3])
        while time.monotonic() < until:
            pump()
        node.start()

    # Final stretch on a live node, then drain everything.
    for _ in range(20):
        pump()
    for tp in producers:
        remaining = tp.p.flush(120)
        tp.check_fatal()
        assert remaining == 0, f"producer {tp.idx}: {remaining} records undelivered after 120s"

    total_acked = sum(len(tp.acked) for tp in producers)
    total_failed = sum(len(tp.failed) for tp in producers)
    print(f"producers={len(producers)} produced={sum(tp.seq for tp in producers)} "
          f"acked={total_acked} failed={total_failed}")
    if total_failed:
        sample = [(v, str(e)) for tp in producers for v, e in list(tp.failed.items())[:3]]
        print(f"failed deliveries (sample): {sample}")
    assert total_acked > 0

    msgs = consume_partitions(node.bootstrap, topic, range(PARTITIONS), timeout=180)
    by_partition = {p: [] for p in range(PARTITIONS)}
    for m in msgs:
        by_partition[m.partition()].append(m)

    location = {}
    problems = []
    for p, ms in by_partition.items():
        offsets = [m.offset() for m in ms]
        if offsets != list(range(len(ms))):
            gaps = [o for i, o in enumerate(offsets) if o != i][:5]
            problems.append(f"partition {p}: offsets not contiguous from 0 (first odd: {gaps})")
        last_seq = {}
        for m in ms:
            v = m.value()
            idx, seq, part = v.decode().split(":")
            idx, seq, part = int(idx), int(seq), int(part)
            if part != p:
                problems.append(f"{v!r} found in partition {p}")
            location.setdefault(v, []).append((p, m.offset()))
            if idx in last_seq and seq <= last_seq[idx]:
                problems.append(f"partition {p} offset {m.offset()}: producer {idx} seq {seq} "
                                f"after seq {last_seq[idx]} (reordered or duplicated)")
            last_seq[idx] = max(seq, last_seq.get(idx, -1))

    dups = {v: locs for v, locs in location.items() if len(locs) > 1}
    if dups:
        problems.append(f"{len(dups)} records present more than once, e.g. "
                        f"{list(dups.items())[:5]}")
    lost, moved = [], []
    no_offset = 0
    for tp in producers:
        for v, (p, off) in tp.acked.items():
            locs = location.get(v)
            if not locs:
                lost.append((v, p, off))
            elif off is None:
                no_offset += 1
                if locs[0][0] != p:
                    moved.append((v, (p, off), locs))
            elif (p, off) not in locs:
                moved.append((v, (p, off), locs))
    if lost:
        problems.append(f"{len(lost)} acknowledged records lost, e.g. {lost[:5]}")
    if moved:
        problems.append(f"{len(moved)} acknowledged records not at their acknowledged offset, "
                        f"e.g. {moved[:5]}")
    acked_values = {v for tp in producers for v in tp.acked}
    unacked_present = [v for v in location if v not in acked_values]
    print(f"records in log: {len(location)}; present but never acknowledged: "
          f"{len(unacked_present)}; acknowledged without an offset: {no_offset}")
    assert not problems, f"seed {seed}:\n" + "\n".join(problems[:20])
