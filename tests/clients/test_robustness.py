"""Bad input on one connection must not hurt others; process-level behaviour
(data-dir lock, clean shutdown on signals)."""

import signal
import socket
import struct

import pytest
from confluent_kafka import TopicPartition

from conftest import (NodeStartError, consume_partitions, consumer, create_topic, produce_all,
                      producer)

MAX_REQUEST_BYTES = 1024 * 1024
SMALL_LIMIT_CONFIG = f"[kafka]\nmax_request_bytes = {MAX_REQUEST_BYTES}\n"

REQUIRED_APIS = {
    0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 8: "OffsetCommit",
    9: "OffsetFetch", 10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat",
    13: "LeaveGroup", 14: "SyncGroup", 15: "DescribeGroups", 16: "ListGroups",
    18: "ApiVersions", 19: "CreateTopics", 20: "DeleteTopics", 22: "InitProducerId",
    32: "DescribeConfigs", 37: "CreatePartitions", 42: "DeleteGroups",
    44: "IncrementalAlterConfigs",
}

# --------------------------------------------------------------------------
# raw protocol helpers


def header_v1(api_key, version, corr_id, client_id=b"raw-test"):
    return struct.pack(">hhih", api_key, version, corr_id, len(client_id)) + client_id


def frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def connect(node, timeout=10.0):
    s = socket.create_connection(node.addr, timeout=timeout)
    s.settimeout(timeout)
    return s


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def read_response(sock):
    """Returns the response frame's payload, or None when the server closed the
    connection. Raises AssertionError when it did neither within the socket timeout."""
    try:
        head = recv_exact(sock, 4)
        if head is None:
            return None
        (size,) = struct.unpack(">i", head)
        assert 0 <= size < 100 * 1024 * 1024, f"absurd response size {size}"
        body = recv_exact(sock, size)
        return body
    except (ConnectionResetError, BrokenPipeError):
        return None
    except socket.timeout:
        raise AssertionError("server neither answered nor closed the connection within the timeout")


def send(sock, data):
    try:
        sock.sendall(data)
    except (ConnectionResetError, BrokenPipeError):
        pass  # already closed by the server: fine, read_response reports None


def api_versions(node):
    s = connect(node)
    try:
        s.sendall(frame(header_v1(18, 0, 1234)))
        resp = read_response(s)
    finally:
        s.close()
    assert resp is not None, "ApiVersions v0 connection was closed"
    corr, err, n = struct.unpack(">ihi", resp[:10])
    assert corr == 1234
    assert err == 0
    apis = {}
    for i in range(n):
        k, lo, hi = struct.unpack(">hhh", resp[10 + 6 * i:16 + 6 * i])
        apis[k] = (lo, hi)
    return apis


def assert_closed_or_answered(resp, corr_id):
    if resp is None:
        return
    (corr,) = struct.unpack(">i", resp[:4])
    assert corr == corr_id, f"response to a bad request has correlation id {corr}, want {corr_id}"


class Witness:
    """A client on its own connections that must keep working throughout."""

    def __init__(self, node):
        self.node = node
        self.topic = create_topic(node.bootstrap, partitions=1)
        self.p = producer(node.bootstrap, acks="all")
        self.sent = []

    def check(self, label):
        assert self.node.is_running(), f"node died after {label}"
        results = []
        value = f"after-{label}".encode()
        self.p.produce(self.topic, value=value, partition=0,
                       on_delivery=lambda err, msg: results.append(err))
        assert self.p.flush(30) == 0, f"produce stuck after {label}"
        assert results == [None], f"produce failed after {label}: {results}"
        self.sent.append(value)
        msgs = consume_partitions(self.node.bootstrap, self.topic, [0], timeout=30)
        assert [m.value() for m in msgs] == self.sent, f"consume wrong after {label}"


# --------------------------------------------------------------------------


def test_api_versions_lists_supported_apis(node):
    apis = api_versions(node)
    missing = {name for k, name in REQUIRED_APIS.items() if k not in apis}
    assert not missing, f"ApiVersions does not advertise {sorted(missing)}"
    for k, (lo, hi) in apis.items():
        assert 0 <= lo <= hi, (k, lo, hi)


BAD_FRAMES = {
    # 3-byte payload: not even a request header
    "short-header": frame(b"\x00\x12\x00"),
    # ApiVersions header whose client id length runs past the frame
    "client-id-overrun": frame(struct.pack(">hhih", 18, 0, 77, 1000) + b"abc"),
    # valid Produce v7 header, garbage body
    "garbage-body": frame(header_v1(0, 7, 78) + b"\xde\xad\xbe\xef" * 16),
    # random bytes (fixed so failures reproduce)
    "random": frame(bytes((i * 97 + 13) % 256 for i in range(200))),
    # negative size
    "negative-size": struct.pack(">i", -5) + b"\x00" * 8,
}


@pytest.mark.parametrize("name", list(BAD_FRAMES))
def test_garbage_frame_closes_or_errors(node, name):
    w = Witness(node)
    w.check("setup")
    s = connect(node)
    try:
        send(s, BAD_FRAMES[name])
        resp = read_response(s)
        if resp is not None and name in ("client-id-overrun", "garbage-body"):
            assert_closed_or_answered(resp, 77 if name == "client-id-overrun" else 78)
    finally:
        s.close()
    w.check(name)
    assert api_versions(node)


def test_oversized_frame_closes_connection(make_node):
    node = make_node(config=SMALL_LIMIT_CONFIG)
    w = Witness(node)
    w.check("setup")
    # Declared size over the limit: connection closed without the body being sent.
    s = connect(node)
    try:
        send(s, struct.pack(">i", MAX_REQUEST_BYTES + 1) + header_v1(18, 0, 5))
        assert read_response(s) is None, "oversized frame was answered instead of closing"
    finally:
        s.close()
    w.check("oversize-declared")

    # Same, but the client actually streams a body of that size.
    s = connect(node)
    try:
        send(s, struct.pack(">i", 4 * MAX_REQUEST_BYTES) + header_v1(0, 7, 6))
        chunk = b"\x00" * 65536
        for _ in range(64):
            try:
                s.sendall(chunk)
            except (ConnectionResetError, BrokenPipeError, socket.timeout):
                break
        assert read_response(s) is None
    finally:
        s.close()
    w.check("oversize-streamed")

    # Frames under the limit still work: a 700 kB record.
    big = b"B" * 700_000
    delivered = produce_all(node.bootstrap, w.topic, [(None, big, None, 0)])
    w.sent.append(big)
    assert delivered[0].offset() == len(w.sent) - 1
    w.check("big-record")


def test_unknown_api_key_and_unsupported_version(node):
    w = Witness(node)
    w.check("setup")

    # Unknown API key.
    s = connect(node)
    try:
        send(s, frame(header_v1(9999, 0, 42)))
        assert_closed_or_answered(read_response(s), 42)
    finally:
        s.close()
    w.check("unknown-api-key")

    # ApiVersions at a version from the future: Kafka answers with a v0 response
    # carrying UNSUPPORTED_VERSION (35) so clients can fall back.
    s = connect(node)
    try:
        send(s, frame(header_v1(18, 999, 43) + b"\x00" + b"\x05hwpy\x040.1\x00"))
        resp = read_response(s)
        if resp is not None:
            corr, err = struct.unpack(">ih", resp[:6])
            assert corr == 43
            assert err == 35, f"ApiVersions v999 answered with error {err}, want 35"
    finally:
        s.close()
    w.check("apiversions-v999")

    # Metadata at an unsupported version.
    s = connect(node)
    try:
        send(s, frame(header_v1(3, 999, 44) + b"\x00\x00"))
        assert_closed_or_answered(read_response(s), 44)
    finally:
        s.close()
    w.check("metadata-v999")

    # Many bad connections at once, then the witness again.
    socks = []
    try:
        for i in range(50):
            s = connect(node)
            send(s, frame(header_v1(9999, 0, 100 + i)))
            socks.append(s)
        for i, s in enumerate(socks):
            assert_closed_or_answered(read_response(s), 100 + i)
    finally:
        for s in socks:
            s.close()
    w.check("many-bad")


def test_half_open_connections_do_not_block_others(node):
    """Clients that connect and send a partial frame (or nothing) must not stall
    the node for others."""
    w = Witness(node)
    idle = []
    try:
        for i in range(20):
            s = connect(node)
            if i % 2:
                s.sendall(struct.pack(">i", 100) + b"\x00\x12")  # partial frame
            idle.append(s)
        w.check("half-open")
    finally:
        for s in idle:
            s.close()
    w.check("after-close")


def test_second_node_on_same_data_dir_refused(make_node):
    first = make_node(name="first")
    topic = create_topic(first.bootstrap)
    second = make_node(name="second", data_dir=first.data_dir, start=False)
    with pytest.raises(NodeStartError):
        second.start(timeout=30)
    assert second.last_exit_code not in (None, 0), second.last_exit_code
    assert "lock" in second.log_text().lower(), "error does not mention the lock file"
    # The first node is unharmed.
    assert first.is_running()
    produce_all(first.bootstrap, topic, [(None, b"still-here")])
    assert [m.value() for m in consume_partitions(first.bootstrap, topic, [0])] == [b"still-here"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_clean_shutdown_and_data_survives(node, sig):
    topic = create_topic(node.bootstrap, partitions=2)
    values = [f"r{i}".encode() for i in range(500)]
    produce_all(node.bootstrap, topic, [(None, v, None, i % 2) for i, v in enumerate(values)])
    node.proc.send_signal(sig)
    code = node.proc.wait(timeout=30)
    node._reap()
    assert code == 0, f"exit code {code} after {sig.name}"
    node.start()
    msgs = consume_partitions(node.bootstrap, topic, [0, 1])
    assert sorted(m.value() for m in msgs) == sorted(values)
    # Offsets continue after restart.
    delivered = produce_all(node.bootstrap, topic, [(None, b"next", None, 0)])
    assert delivered[0].offset() == 250
    c = consumer(node.bootstrap)
    try:
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, 251)
        assert c.get_watermark_offsets(TopicPartition(topic, 1), timeout=10) == (0, 250)
    finally:
        c.close()


def test_stop_with_connected_clients(node):
    """SIGTERM with clients still connected (and a consumer in a long poll) exits 0."""
    topic = create_topic(node.bootstrap)
    c = consumer(node.bootstrap, **{"fetch.wait.max.ms": 10000})
    c.subscribe([topic])
    p = producer(node.bootstrap)
    try:
        p.produce(topic, value=b"x")
        p.flush(30)
        for _ in range(10):
            c.poll(0.3)
        assert node.stop() == 0
    finally:
        c.close()
