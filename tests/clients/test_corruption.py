"""On-disk damage: `headwater log verify` / `log inspect` find a flipped byte;
a torn tail of the last segment is cut off at startup, reported, and the node
carries on.

The test reads segment files itself as Kafka v2 record batches
(baseOffset int64, batchLength int32, leaderEpoch int32, magic int8, crc uint32,
then the CRC-covered rest) to choose where to do damage.
"""

import re
import struct

import pytest

from conftest import consume_partitions, create_topic, produce_all, run_cli

SEGMENT_BYTES = 100_000
RECORDS_PER_CHUNK = 40
VALUE_SIZE = 250


def parse_batches(path):
    """[(byte position, base offset, total size, record count)] of a segment file."""
    data = path.read_bytes()
    out, pos = [], 0
    while pos + 61 <= len(data):
        base, length = struct.unpack_from(">qi", data, pos)
        magic = data[pos + 16]
        if magic != 2 or length < 49 or pos + 12 + length > len(data):
            break
        count = struct.unpack_from(">i", data, pos + 57)[0]
        out.append((pos, base, 12 + length, count))
        pos += 12 + length
    assert pos == len(data), (
        f"{path}: could not read it as a sequence of Kafka v2 record batches "
        f"(stopped at byte {pos} of {len(data)})")
    return out


# A batch line of `log inspect` states its CRC as good or bad; accept either
# "crc ok / BAD" words or a "crcOk: true/false" field.
BAD_CRC = re.compile(r"\bBAD\b|crc_?ok\W*(false|no)\b", re.I)
GOOD_CRC = re.compile(r"\bok\b|crc_?ok\W*(true|yes)\b", re.I)


def is_batch_line(line):
    return bool(BAD_CRC.search(line) or GOOD_CRC.search(line))


def fill_segments(node, topic, chunks):
    """Produce `chunks` flushes of RECORDS_PER_CHUNK records; returns {offset: value}."""
    values = {}
    for c in range(chunks):
        recs = [(None, (f"c{c:03d}-r{i:03d}-".encode() + b"x" * VALUE_SIZE), None, 0)
                for i in range(RECORDS_PER_CHUNK)]
        for m in produce_all(node.bootstrap, topic, recs,
                             **{"compression.type": "none", "linger.ms": 50}):
            values[m.offset()] = m.value()
    return values


@pytest.fixture
def segmented(node):
    """A node (stopped) with a 1-partition topic spread over several segments."""
    topic = create_topic(node.bootstrap, config={"segment.bytes": str(SEGMENT_BYTES)})
    values = fill_segments(node, topic, 40)
    assert sorted(values) == list(range(40 * RECORDS_PER_CHUNK))
    assert node.stop() == 0
    segs = node.segments(topic, 0)
    assert len(segs) >= 3, f"expected several segments with segment.bytes={SEGMENT_BYTES}: {segs}"
    for s in segs:
        assert re.fullmatch(r"\d{20}\.log", s.name), s.name
        assert s.stat().st_size <= SEGMENT_BYTES + 20_000, f"{s} larger than segment.bytes"
    return node, topic, values


def test_segment_layout_matches_offsets(segmented):
    node, topic, values = segmented
    expected = 0
    for seg in node.segments(topic, 0):
        batches = parse_batches(seg)
        assert int(seg.name[:20]) == batches[0][1], f"{seg.name} does not start at its base offset"
        for pos, base, size, count in batches:
            assert base == expected, f"{seg.name}@{pos}: base offset {base}, want {expected}"
            expected += count
    assert expected == len(values)


def test_flipped_byte_found_by_verify_and_inspect(segmented):
    node, topic, values = segmented
    pdir = node.partition_dir(topic, 0)

    clean = run_cli("log", "verify", str(pdir))
    assert clean.returncode == 0, f"verify of an undamaged partition failed:\n{clean.stdout}{clean.stderr}"

    seg = node.segments(topic, 0)[1]
    batches = parse_batches(seg)
    inspect = run_cli("log", "inspect", str(seg))
    assert inspect.returncode == 0, inspect.stdout + inspect.stderr
    lines = [l for l in inspect.stdout.splitlines() if l.strip()]
    batch_lines = [l for l in lines if is_batch_line(l)]
    assert len(batch_lines) == len(batches), (
        f"inspect printed {len(batch_lines)} batch lines for {len(batches)} batches:\n{inspect.stdout}")
    assert not [l for l in batch_lines if BAD_CRC.search(l)], inspect.stdout

    pos, base, size, count = batches[len(batches) // 2]
    flip_at = pos + size - 10  # inside the last record: CRC-covered
    data = bytearray(seg.read_bytes())
    data[flip_at] ^= 0xFF
    seg.write_bytes(bytes(data))

    for target in (pdir, seg):
        res = run_cli("log", "verify", str(target))
        out = res.stdout + res.stderr
        assert res.returncode != 0, f"verify {target} exited 0 on a damaged segment:\n{out}"
        assert seg.name in out, f"verify output does not name {seg.name}:\n{out}"
        positions = {str(pos), str(flip_at)}
        assert any(re.search(rf"\b{p}\b", out) for p in positions), (
            f"verify output names neither the batch position {pos} nor the byte {flip_at}:\n{out}")

    inspect = run_cli("log", "inspect", str(seg))
    out = inspect.stdout + inspect.stderr
    bad = [l for l in out.splitlines() if BAD_CRC.search(l)]
    assert len(bad) == 1, f"inspect should flag exactly one batch as BAD:\n{out}"
    assert re.search(rf"\b{base}\b", bad[0]), f"BAD line does not show base offset {base}: {bad[0]}"

    # Other segments are still clean.
    for other in node.segments(topic, 0):
        if other != seg:
            res = run_cli("log", "verify", str(other))
            assert res.returncode == 0, f"{other.name} reported damaged:\n{res.stdout}{res.stderr}"


def test_torn_tail_is_truncated_on_startup(segmented):
    node, topic, values = segmented
    seg = node.segments(topic, 0)[-1]
    batches = parse_batches(seg)
    pos, base, size, count = batches[-1]
    assert base + count == len(values)
    cut = pos + size // 2
    with open(seg, "r+b") as f:
        f.truncate(cut)
    last_good = base - 1

    node.start()
    log = node.log_since_last_start()
    assert seg.name in log, f"startup log does not name the damaged segment {seg.name}"
    assert re.search(rf"\b{pos}\b", log), f"startup log does not give byte position {pos}"
    assert re.search(rf"\b{last_good}\b", log), f"startup log does not give last good offset {last_good}"

    msgs = consume_partitions(node.bootstrap, topic, [0])
    assert [m.offset() for m in msgs] == list(range(base)), "records before the damage not all there"
    for m in msgs:
        assert m.value() == values[m.offset()]

    new = produce_all(node.bootstrap, topic, [(None, f"new-{i}".encode(), None, 0) for i in range(10)],
                      acks="all")
    assert [m.offset() for m in new] == list(range(base, base + 10))
    msgs = consume_partitions(node.bootstrap, topic, [0], start_offset=base)
    assert [m.value() for m in msgs] == [f"new-{i}".encode() for i in range(10)]

    # A clean restart after recovery finds nothing to repair and keeps everything.
    assert node.stop() == 0
    res = run_cli("log", "verify", str(node.partition_dir(topic, 0)))
    assert res.returncode == 0, f"verify after recovery failed:\n{res.stdout}{res.stderr}"
    node.start()
    msgs = consume_partitions(node.bootstrap, topic, [0])
    assert len(msgs) == base + 10
