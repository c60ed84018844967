"""A full disk: the producer is told KAFKA_STORAGE_ERROR, nothing acknowledged is lost or
damaged, reads keep being served, and writes resume once space is freed, without a restart.

The node's data dir sits on a 3 MiB tmpfs mounted by the test (root only; skipped otherwise).
"""

import os
import subprocess

import pytest
from confluent_kafka import KafkaError

from conftest import admin_client, consume_partitions, create_topic, producer, unique

VALUE = b"v" * 20_000


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def produce_until_error(bootstrap, topic, limit=400):
    """Produce one record at a time until a delivery fails; returns (acked {offset: value}, error)."""
    p = producer(bootstrap, **{"acks": "all", "retries": 0, "linger.ms": 0,
                               "message.timeout.ms": 10000})
    acked, errors = {}, []

    def cb(err, msg):
        if err is not None:
            errors.append(err)
        else:
            acked[msg.offset()] = msg.value()

    for i in range(limit):
        p.produce(topic, value=b"%05d-" % i + VALUE, partition=0, on_delivery=cb)
        p.flush(15)
        if errors:
            break
    return acked, (errors[0] if errors else None)


def test_full_disk_refuses_writes_keeps_acknowledged_data_and_recovers(make_node, small_disk):
    node = make_node(data_dir=small_disk / "data")
    other = create_topic(node.bootstrap, unique("other"))
    before, err = produce_until_error(node.bootstrap, other, limit=1)
    assert err is None and len(before) == 1

    filler = create_topic(node.bootstrap, unique("filler"))
    acked, err = produce_until_error(node.bootstrap, filler)
    assert err is not None, "a 3 MiB disk must fill up"
    assert err.code() == KafkaError.KAFKA_STORAGE_ERROR, err
    assert len(acked) > 10
    assert node.is_running(), "the node keeps serving after a full disk"
    assert "No space left on device" in node.log_since_last_start()

    # Everything acknowledged is there, once, in order, byte for byte.
    got = consume_partitions(node.bootstrap, filler, [0])
    assert [(m.offset(), m.value()) for m in got] == sorted(acked.items())
    got = consume_partitions(node.bootstrap, other, [0])
    assert [m.value() for m in got] == list(before.values())

    # Free the space: writes work again on the same running node.
    admin = admin_client(node.bootstrap)
    admin.delete_topics([filler])[filler].result(30)
    after, err = produce_until_error(node.bootstrap, other, limit=3)
    assert err is None, err
    assert sorted(after) == [1, 2, 3]

    node.restart()
    got = consume_partitions(node.bootstrap, other, [0])
    assert [m.offset() for m in got] == [0, 1, 2, 3]
