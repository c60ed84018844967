"""kcat (librdkafka's command-line client) against a headwater node."""

import json
import shutil
import subprocess

import pytest

from conftest import create_topic, run_cli, unique

KCAT = shutil.which("kcat") or shutil.which("kafkacat")

pytestmark = pytest.mark.skipif(KCAT is None, reason="kcat not installed (scripts/test installs it)")

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def kcat(bootstrap, *args, input_text=None, timeout=60):
    proc = subprocess.run(
        [KCAT, "-b", bootstrap, "-X", "socket.timeout.ms=10000", *args],
        input=input_text, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        timeout=timeout)
    return proc


def kcat_ok(bootstrap, *args, **kw):
    proc = kcat(bootstrap, *args, **kw)
    assert proc.returncode == 0, (
        f"kcat {' '.join(args)} exited {proc.returncode}\nstdout:\n{proc.stdout}\n"
        f"stderr:\n{proc.stderr}")
    return proc


def test_metadata_lists_broker_and_topic(node):
    topic = create_topic(node.bootstrap, partitions=3)
    proc = kcat_ok(node.bootstrap, "-L", "-J")
    md = json.loads(proc.stdout)
    brokers = md["brokers"]
    assert len(brokers) == 1, brokers
    assert brokers[0]["name"] == f"127.0.0.1:{node.port}", brokers
    broker_id = brokers[0]["id"]
    topics = {t["topic"]: t for t in md["topics"]}
    assert topic in topics, f"{topic} missing from {list(topics)}"
    parts = topics[topic]["partitions"]
    assert sorted(p["partition"] for p in parts) == [0, 1, 2]
    for p in parts:
        assert p["leader"] == broker_id, p
        assert p.get("error") in (None, ""), p

    # Metadata for just that topic.
    proc = kcat_ok(node.bootstrap, "-L", "-J", "-t", topic)
    md = json.loads(proc.stdout)
    assert [t["topic"] for t in md["topics"]] == [topic]
    assert len(md["topics"][0]["partitions"]) == 3


def test_produce_keys_headers_and_consume(node):
    topic = create_topic(node.bootstrap, partitions=1)
    lines = [f"key{i}:value-{i}" for i in range(50)]
    kcat_ok(node.bootstrap, "-P", "-t", topic, "-p", "0", "-K:", "-H", "hk=hv", "-H", "trace=abc",
            input_text="\n".join(lines) + "\n")
    proc = kcat_ok(node.bootstrap, "-C", "-t", topic, "-e", "-o", "beginning",
                   "-f", "%k|%s|%h|%o\n")
    out = [l for l in proc.stdout.splitlines() if l]
    assert len(out) == 50, proc.stdout + proc.stderr
    for i, line in enumerate(out):
        key, value, headers, offset = line.split("|")
        assert key == f"key{i}"
        assert value == f"value-{i}"
        assert headers == "hk=hv,trace=abc"
        assert int(offset) == i


def test_consume_empty_topic_exits(node):
    topic = create_topic(node.bootstrap, partitions=2)
    proc = kcat_ok(node.bootstrap, "-C", "-t", topic, "-e", "-o", "beginning", "-f", "%s\n",
                   timeout=60)
    assert proc.stdout.strip() == ""


@pytest.mark.parametrize("codec", CODECS)
def test_produce_with_codec_and_read_back(node, codec):
    topic = create_topic(node.bootstrap, partitions=1)
    # Compressible values, enough of them to make multi-record batches.
    values = [f"{codec}-record-{i:05d}-" + "abcdefgh" * 20 for i in range(500)]
    kcat_ok(node.bootstrap, "-P", "-t", topic, "-p", "0", "-X", f"compression.codec={codec}",
            "-X", "linger.ms=50", input_text="\n".join(values) + "\n")
    proc = kcat_ok(node.bootstrap, "-C", "-t", topic, "-e", "-o", "beginning", "-f", "%o|%s\n")
    out = [l for l in proc.stdout.splitlines() if l]
    assert len(out) == len(values)
    for i, line in enumerate(out):
        off, value = line.split("|", 1)
        assert int(off) == i
        assert value == values[i]


@pytest.mark.xfail(strict=False, reason=(
    "Debian 12's kcat (librdkafka 2.0.2) only compresses gzip/snappy/lz4 when the broker "
    "advertises Produce v2 and Fetch v2 (its MsgVer1 feature); headwater's minimums are "
    "Produce v3 / Fetch v4 (as Kafka 4.0), so those batches go out uncompressed. "
    "test_confluent_kafka.py::test_compression checks stored codecs with a current librdkafka."))
def test_codecs_are_stored_compressed(node):
    """Batches produced with each codec are stored as such: after a clean stop,
    `headwater log inspect` names every codec used on the partition."""
    topic = create_topic(node.bootstrap, partitions=1)
    for codec in CODECS[1:]:
        values = [f"{codec}-{i}-" + "xyz" * 30 for i in range(100)]
        kcat_ok(node.bootstrap, "-P", "-t", topic, "-p", "0", "-X", f"compression.codec={codec}",
                "-X", "linger.ms=50", input_text="\n".join(values) + "\n")
    assert node.stop() == 0
    proc = run_cli("log", "inspect", str(node.partition_dir(topic, 0)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = proc.stdout.lower()
    for codec in CODECS[1:]:
        assert codec in text, f"`log inspect` does not mention {codec}:\n{proc.stdout}"
    node.start()
    proc = kcat_ok(node.bootstrap, "-C", "-t", topic, "-e", "-o", "beginning", "-f", "%s\n")
    assert len([l for l in proc.stdout.splitlines() if l]) == 400
