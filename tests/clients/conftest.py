"""Shared fixtures for the real-client test suite.

Every test starts its own headwater node (a real process of the binary named by
HEADWATER_BIN, default target/debug/headwater) on a free 127.0.0.1 port with a
fresh data directory, and talks to it with real Kafka clients.  When a test
fails, the log of every node it started is attached to the failure report.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Callable, Iterable, Optional

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_MARKER = "kafka listener ready"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0
ADMIN_TIMEOUT_S = 30.0


def headwater_bin() -> Path:
    raw = os.environ.get("HEADWATER_BIN", "target/debug/headwater")
    path = Path(raw)
    if not path.is_absolute():
        path = REPO_ROOT / path
    return path


def require_binary() -> Path:
    path = headwater_bin()
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(
            f"headwater binary not found at {path}; build it with `cargo build --workspace` "
            "or point HEADWATER_BIN at it",
            pytrace=False,
        )
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Run `headwater ARGS...` (not `serve`), capturing stdout and stderr as text."""
    return subprocess.run(
        [str(require_binary()), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        timeout=timeout,
    )


def examples_with_broken_pipeline(tmp_path: Path) -> Path:
    """A copy of the example domains where finance also declares `broken_cast`, a batch pipeline
    whose SQL plans but fails at run time (a currency cannot be cast to INT)."""
    import shutil
    dirs = tmp_path / "domains"
    shutil.copytree(REPO_ROOT / "examples" / "domains", dirs)
    finance = dirs / "finance" / "domain.yaml"
    finance.write_text(finance.read_text() + """
  broken_cast:
    mode: batch
    inputs: [payments.transaction_settled]
    sql: SELECT CAST(currency AS INT) AS c FROM payments.transaction_settled
    output: { table: broken }
""")
    return dirs


def node_cli(node, *args: str, stdin: Optional[str] = None,
             timeout: float = 120.0) -> subprocess.CompletedProcess:
    """Run `headwater ARGS... --url <node's HTTP API>`, with `stdin` as input."""
    return subprocess.run([str(require_binary()), *args, "--url", node.http_url], input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def principal(name: str, *groups: str) -> dict:
    """A new principal as `headwater auth principal` makes it: its `config` block, `password`
    and `token`, and its `name`."""
    args = ["auth", "principal", name, "--output", "json"]
    for g in groups:
        args += ["--group", g]
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    made = json.loads(r.stdout)
    made["name"] = name
    return made


KCAT = shutil.which("kcat") or shutil.which("kafkacat")


def kcat_args(who, mechanism: str = "SCRAM-SHA-256", password: Optional[str] = None) -> list:
    """kcat's `-X` options to sign in as `who` (with `password` instead of its own, if given)."""
    return ["-X", "security.protocol=SASL_PLAINTEXT", "-X", f"sasl.mechanism={mechanism}",
            "-X", f"sasl.username={who['name']}",
            "-X", f"sasl.password={password or who['password']}"]


def kcat_on(node, *args, input_text: Optional[str] = None,
            timeout: float = 30) -> subprocess.CompletedProcess:
    """kcat against `node`'s Kafka port (`-m 10`: waits at most 10 s for messages)."""
    return subprocess.run([KCAT, "-b", node.bootstrap, "-m", "10", *args], input=input_text,
                          capture_output=True, text=True, timeout=timeout)


def cli_as(node, who, *args, stdin: Optional[str] = None,
           timeout: float = 120.0) -> subprocess.CompletedProcess:
    """`node_cli` signed in as principal `who` (its bearer token in HEADWATER_TOKEN), or with
    no token when `who` is None."""
    env = dict(os.environ, HEADWATER_TOKEN=who["token"] if who else "")
    return subprocess.run([str(require_binary()), *args, "--url", node.http_url], input=stdin,
                          capture_output=True, text=True, timeout=timeout, env=env)


def audit(node, platform) -> list:
    """Every audit entry, read as `platform` with `headwater audit log`."""
    r = cli_as(node, platform, "audit", "log", "--output", "json")
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def wait_for_audit(node, platform, match, timeout: float = 10) -> list:
    """The audit entries `match` keeps, once there is one (the trail is written
    asynchronously); empty after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        entries = [e for e in audit(node, platform) if match(e)]
        if entries or time.monotonic() > deadline:
            return entries
        time.sleep(0.2)


def first_message(consumer, timeout: float = 20, decode=lambda value: value):
    """The first record's value (through `decode`) or the first error a consumer reports
    (partition EOFs aside); None if neither comes within `timeout` seconds. Closes the
    consumer."""
    from confluent_kafka import KafkaError
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            m = consumer.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                return m.error()
            return decode(m.value())
        return None
    finally:
        consumer.close()


class NodeStartError(RuntimeError):
    pass


class Node:
    """One headwater process with its own data dir and port.

    The port and data dir stay the same across stop()/kill()/restart(), so a
    client's bootstrap address stays valid across restarts.
    """

    def __init__(self, workdir: Path, name: str = "node", config: Optional[str] = None,
                 data_dir: Optional[Path] = None, port: Optional[int] = None):
        self.name = name
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = Path(data_dir) if data_dir else self.workdir / f"{name}-data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / f"{name}.log"
        self.config_path: Optional[Path] = None
        if config is not None:
            self.config_path = self.workdir / f"{name}.toml"
            self.config_path.write_text(config)
        self.port = port or free_port()
        # Two free_port() calls can hand out the same port; the HTTP port must differ.
        self.http_port = free_port()
        while self.http_port == self.port:
            self.http_port = free_port()
        self.proc: Optional[subprocess.Popen] = None
        self.starts = 0
        self.last_exit_code: Optional[int] = None
        self._log_file = None

    # -- addresses ---------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def addr(self) -> tuple:
        return ("127.0.0.1", self.port)

    # -- lifecycle ---------------------------------------------------------
    def command(self) -> list:
        cmd = [str(require_binary()), "serve", "--data-dir", str(self.data_dir),
               "--kafka-addr", self.bootstrap,
               "--http-addr", f"127.0.0.1:{self.http_port}"]
        if self.config_path is not None:
            cmd += ["--config", str(self.config_path)]
        return cmd

    @property
    def http_url(self) -> str:
        """Base URL of the node's HTTP API (Schema Registry API at the root)."""
        return f"http://127.0.0.1:{self.http_port}"

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = START_TIMEOUT_S) -> "Node":
        if self.is_running():
            raise RuntimeError(f"{self.name} is already running")
        self.starts += 1
        log = open(self.log_path, "ab", buffering=0)
        banner = f"\n===== {self.name}: start #{self.starts}: {' '.join(self.command())}\n"
        log.write(banner.encode())
        start_offset = self.log_path.stat().st_size
        self._log_file = log
        env = dict(os.environ)
        env.setdefault("RUST_BACKTRACE", "1")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + timeout
        while True:
            text = self._read_log_from(start_offset)
            if READY_MARKER in text:
                return self
            code = self.proc.poll()
            if code is not None:
                self.last_exit_code = code
                self._close_log()
                raise NodeStartError(
                    f"{self.name} exited with code {code} before `{READY_MARKER}`; log:\n"
                    f"{self._read_log_from(start_offset)}")
            if time.monotonic() > deadline:
                self._signal_and_wait(signal.SIGKILL, 10)
                raise NodeStartError(
                    f"{self.name} did not print `{READY_MARKER}` within {timeout:.0f}s; log:\n"
                    f"{self._read_log_from(start_offset)}")
            time.sleep(0.05)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> Optional[int]:
        """SIGTERM and wait; returns the exit code (None if it was not running).
        If the node does not exit within `timeout`, it is SIGKILLed and an
        AssertionError is raised."""
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            return self._reap()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._signal_and_wait(signal.SIGKILL, 10)
            raise AssertionError(f"{self.name} did not exit within {timeout}s of SIGTERM")
        return self._reap()

    def kill(self) -> Optional[int]:
        """SIGKILL and wait."""
        if self.proc is None:
            return None
        return self._signal_and_wait(signal.SIGKILL, 10)

    def restart(self, timeout: float = START_TIMEOUT_S) -> "Node":
        """Stop (SIGTERM) if running, then start on the same port and data dir."""
        if self.is_running():
            self.stop()
        return self.start(timeout=timeout)

    def _signal_and_wait(self, sig, timeout) -> Optional[int]:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        return self._reap()

    def _reap(self) -> Optional[int]:
        code = self.proc.returncode if self.proc else None
        self.last_exit_code = code
        if self._log_file is not None:
            self._log_file.write(f"===== {self.name}: exited with code {code}\n".encode())
        self._close_log()
        return code

    def _close_log(self):
        if self._log_file is not None:
            try:
                self._log_file.close()
            finally:
                self._log_file = None

    # -- logs --------------------------------------------------------------
    def _read_log_from(self, offset: int) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_text(self) -> str:
        return self._read_log_from(0)

    def log_since_last_start(self) -> str:
        text = self.log_text()
        marker = f"===== {self.name}: start #{self.starts}:"
        idx = text.rfind(marker)
        return text[idx:] if idx >= 0 else text

    # -- paths -------------------------------------------------------------
    def partition_dir(self, topic: str, partition: int) -> Path:
        return self.data_dir / "topics" / f"{topic}-{partition}"

    def segments(self, topic: str, partition: int) -> list:
        return sorted(self.partition_dir(topic, partition).glob("*.log"))

    def __repr__(self):
        return f"Node({self.name}, {self.bootstrap}, running={self.is_running()})"


# ---------------------------------------------------------------------------
# pytest plumbing


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for node in getattr(item, "_headwater_nodes", []):
            text = node.log_text()
            if len(text) > 60000:
                text = "... (head cut; full log at " + str(node.log_path) + ")\n" + text[-60000:]
            rep.sections.append((f"headwater log: {node.name} ({node.log_path})", text))


@pytest.fixture
def make_node(request, tmp_path) -> Callable[..., Node]:
    """Factory: make_node(config=None, name=None, start=True, data_dir=None) -> Node."""
    require_binary()
    nodes: list = []
    request.node._headwater_nodes = nodes

    def factory(config: Optional[str] = None, name: Optional[str] = None, start: bool = True,
                data_dir: Optional[Path] = None) -> Node:
        node = Node(tmp_path, name=name or f"node{len(nodes)}", config=config, data_dir=data_dir)
        nodes.append(node)
        if start:
            node.start()
        return node

    yield factory
    for node in nodes:
        if node.is_running():
            try:
                node.stop(timeout=15)
            except AssertionError:
                pass


@pytest.fixture
def node(make_node) -> Node:
    """A running node with the default configuration."""
    return make_node()


# ---------------------------------------------------------------------------
# client helpers


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def admin_client(bootstrap: str):
    from confluent_kafka.admin import AdminClient
    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000})


def create_topic(bootstrap: str, name: Optional[str] = None, partitions: int = 1,
                 config: Optional[dict] = None) -> str:
    """Create a topic through confluent_kafka's AdminClient and wait until the
    broker's metadata shows all its partitions."""
    from confluent_kafka.admin import NewTopic
    name = name or unique("topic")
    admin = admin_client(bootstrap)
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1,
                  config={k: str(v) for k, v in (config or {}).items()})],
        operation_timeout=ADMIN_TIMEOUT_S, request_timeout=ADMIN_TIMEOUT_S)
    futures[name].result(timeout=ADMIN_TIMEOUT_S)
    wait_for_topic(bootstrap, name, partitions)
    return name


def wait_for_topic(bootstrap: str, name: str, partitions: int, timeout: float = ADMIN_TIMEOUT_S):
    admin = admin_client(bootstrap)
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        md = admin.list_topics(timeout=10)
        t = md.topics.get(name)
        if t is not None and t.error is None and len(t.partitions) == partitions:
            return t
        last = t
        time.sleep(0.1)
    raise AssertionError(f"topic {name} did not show {partitions} partitions in metadata: {last}")


def producer(bootstrap: str, **extra):
    from confluent_kafka import Producer
    conf = {"bootstrap.servers": bootstrap, "linger.ms": 5, "message.timeout.ms": 30000,
            "socket.timeout.ms": 10000}
    conf.update(extra)
    return Producer(conf)


def consumer(bootstrap: str, group: Optional[str] = None, **extra):
    from confluent_kafka import Consumer
    conf = {"bootstrap.servers": bootstrap, "group.id": group or unique("group"),
            "auto.offset.reset": "earliest", "enable.auto.commit": False,
            "socket.timeout.ms": 10000, "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 500, "fetch.wait.max.ms": 100}
    conf.update(extra)
    return Consumer(conf)


def produce_all(bootstrap: str, topic: str, records: Iterable, timeout: float = 60.0,
                **producer_conf) -> list:
    """Produce (key, value[, headers[, partition]]) tuples and return the list of
    delivered messages in delivery order; fail on any delivery error."""
    p = producer(bootstrap, **producer_conf)
    delivered, errors = [], []

    def cb(err, msg):
        (errors if err else delivered).append((err, msg) if err else msg)

    n = 0
    for rec in records:
        key, value = rec[0], rec[1]
        kwargs = {}
        if len(rec) > 2 and rec[2] is not None:
            kwargs["headers"] = rec[2]
        if len(rec) > 3 and rec[3] is not None:
            kwargs["partition"] = rec[3]
        while True:
            try:
                p.produce(topic, key=key, value=value, on_delivery=cb, **kwargs)
                break
            except BufferError:
                p.poll(0.1)
        n += 1
        p.poll(0)
    remaining = p.flush(timeout)
    assert remaining == 0, f"{remaining} messages still undelivered after {timeout}s"
    assert not errors, f"delivery errors: {errors[:5]}"
    assert len(delivered) == n
    return delivered


GAP_IDLE_S = 2.0


def consume_partitions(bootstrap: str, topic: str, partitions: Iterable[int],
                       timeout: float = 60.0, start_offset=None, allow_gaps: bool = False) -> list:
    """Read every listed partition from `start_offset` (default: beginning) up to
    its high watermark at call time, by assignment (no group membership).
    Returns messages in per-partition log order (partitions concatenated)."""
    from confluent_kafka import OFFSET_BEGINNING, TopicPartition
    c = consumer(bootstrap)
    try:
        partitions = list(partitions)
        highs = {}
        for p in partitions:
            low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            highs[p] = high
        start = OFFSET_BEGINNING if start_offset is None else start_offset
        c.assign([TopicPartition(topic, p, start) for p in partitions])
        out = {p: [] for p in partitions}
        pos = {p: -1 for p in partitions}
        deadline = time.monotonic() + timeout
        last_progress = time.monotonic()

        def done():
            return all(pos[p] + 1 >= highs[p] for p in partitions)

        while not done():
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out consuming {topic}: positions {pos}, high watermarks {highs}")
            msg = c.poll(0.5)
            if msg is None:
                # The last offsets of a partition can be a span without records (records that
                # went to the dead-letter stream): no message ever arrives for them.
                if allow_gaps and time.monotonic() - last_progress > GAP_IDLE_S:
                    break
                continue
            last_progress = time.monotonic()
            if msg.error():
                raise AssertionError(f"consume error: {msg.error()}")
            out[msg.partition()].append(msg)
            pos[msg.partition()] = msg.offset()
        result = []
        for p in partitions:
            result.extend(m for m in out[p] if m.offset() < highs[p])
        return result
    finally:
        c.close()


def consume_n(c, n: int, timeout: float = 60.0) -> list:
    """Poll an already-subscribed/assigned consumer until n messages arrive."""
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n:
        if time.monotonic() > deadline:
            raise AssertionError(f"got only {len(out)} of {n} messages within {timeout}s")
        msg = c.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            raise AssertionError(f"consume error: {msg.error()}")
        out.append(msg)
    return out
