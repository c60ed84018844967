"""Attacks through real clients on a node with auth on; every one must be refused, leave the
node as it was and (for a signed-in attacker) be on the record.

The attacker is usually `mallory` (group team:mallory, owning nothing) or a principal of one
domain reaching into another's. Clients: confluent-kafka (a current librdkafka), kafka-python,
kcat (Debian's, librdkafka 2.0.2), the `headwater` CLI, urllib and curl; raw sockets only where
the attack is a malformed or abusive connection.

Findings covered (a test named after each; several fail against a binary without the fix):

F1  plan/apply over HTTP trusted the client's resolved specs: an old-format spec list (now 422,
    "bundle"), or a manifest (CLI or bundle), could declare `_headwater.audit`, take a reserved
    name such as `_pipeline`, write a table or view outside the data dir (`../`), or claim
    another domain's dead-letter topic. The node now re-derives domains from a manifest bundle
    (`{"files": {path: text}}`, relative paths only) and checks names strictly.
F2  a refused manifest in the same apply must not vouch for another domain's pipeline (a
    pipeline reading payments' pii stream because a refused payments manifest says so).
F3  `/v1/sql` ran COPY TO, CREATE [EXTERNAL] TABLE, INSERT, DROP and SET; and ran unbounded.
    Now read-only, with `[sql] max_memory_bytes` and `timeout_ms`.
F4  the SSE `?group=` check matched the raw query text: `%67roup=` slipped past it.
F5  every failed sign-in was an audit entry (a flood filled the trail; user names of any size).
    Now sampled per source address with a count, names cut to 256; `/v1/audit` pages
    (`limit`, `next`, `after`).
F6  no connection limits or deadlines: `[kafka] max_connections`, `sign_in_timeout_ms`,
    `idle_timeout_ms`, `[http] header_read_timeout_ms`, `max_event_streams`.
F7  a burst of bad PLAIN sign-ins must not stall a signed-in producer.
F8  SCRAM for an unknown user answered a new random salt each time (user enumeration).
F9  a domain's owner could change manifest-governed topic settings (`headwater.validation`,
    `retention.ms`) through IncrementalAlterConfigs, bypassing the manifest.
Matrix  the refusals that already hold, through the clients test_access.py does not cover:
    no credentials, wrong password, not a reader, pii stream without readership/grant, another
    domain's consumer group, internal topics, non-owner DeleteTopics / CreatePartitions /
    IncrementalAlterConfigs / DeleteGroups. Each refused with the client's error, audited
    (for admin requests at most once per attempt), and nothing changed.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from confluent_kafka import (ConsumerGroupTopicPartitions, Consumer, KafkaError, KafkaException,
                             Producer, TopicPartition)
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   NewPartitions, ResourceType)

from conftest import (KCAT, REPO_ROOT, audit, cli_as, first_message, kcat_args, kcat_on,
                      principal, wait_for_audit)

EXAMPLES = REPO_ROOT / "examples" / "domains"

SETTLED = "payments.transaction_settled"
SETTLED_DLQ = "payments.transaction_settled.dlq"
CHARGEBACKS = "payments.chargeback_opened"
LEDGER = "finance.ledger_entry"
AUDIT_TOPIC = "_headwater.audit"
PAYMENTS_GROUP = "payments.settlement-audit"
TXN = {"transaction_id": "t-1", "customer_id": "c-1", "merchant_id": "m-1", "amount": 12.5,
       "currency": "EUR", "settled_at": "2026-11-30T09:00:00Z"}
CHARGEBACK = {"chargeback_id": "cb-1", "transaction_id": "t-1", "customer_id": "c-1",
              "amount": 42.5, "currency": "EUR", "reason": "fraud",
              "opened_at": "2026-11-30T09:00:00Z"}
LIVE_S = 20  # generous bound for "still answering" / "closed by the node"


# ---------------------------------------------------------------------------------------------
# principals and nodes


@pytest.fixture(scope="module")
def people():
    """Every principal the attacks use; made once (each is a PBKDF2 derivation)."""
    return {
        "platform": principal("platform"),
        "pay": principal("pay-svc", "team:payments"),
        "fin": principal("fin-svc", "team:finance-eng"),
        "growth": principal("growth-svc", "team:growth"),
        "mallory": principal("mallory", "team:mallory"),
    }


def start_secured(make_node, people, extra_config="", apply_examples=True):
    """A node with auth on (and `extra_config` TOML before [auth]), the example domains
    applied by the platform principal."""
    config = (extra_config.strip() + "\n\n" if extra_config.strip() else "") + \
        '[auth]\nplatform = ["user:platform"]\n\n' + "\n".join(p["config"] for p in people.values())
    node = make_node(config=config)
    assert "authentication on" in node.log_text()
    if apply_examples:
        r = cli_as(node, people["platform"], "apply", str(EXAMPLES))
        assert r.returncode == 0, r.stdout + r.stderr
    return node


@pytest.fixture
def secured(make_node, people):
    return start_secured(make_node, people), people


# ---------------------------------------------------------------------------------------------
# HTTP


def http(node, method, path, token=None, body=None, timeout=60):
    """(status, answer): the answer parsed as JSON when it is JSON, else its text."""
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else (
            body.encode() if isinstance(body, str) else json.dumps(body).encode())
    req = urllib.request.Request(node.http_url + path, method=method, data=data)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    text = raw.decode("utf-8", errors="replace")
    try:
        return status, json.loads(text) if text.strip() else None
    except ValueError:
        return status, text


def message(answer):
    """The error text of an answer (`error`/`message`), or the whole answer as text."""
    if isinstance(answer, dict):
        return str(answer.get("error") or answer.get("message") or answer)
    return str(answer)


def curl(node, path, token=None, method="GET", body=None, timeout=30):
    """(status, body text) through curl."""
    args = ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "-X", method, "--max-time",
            str(timeout), node.http_url + path]
    if token is not None:
        args += ["-H", f"Authorization: Bearer {token}"]
    if body is not None:
        args += ["-H", "Content-Type: application/json", "--data-binary", body]
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout + 10)
    assert r.returncode == 0, r.stderr
    text, _, status = r.stdout.rpartition("\n")
    return int(status), text


def domains_now(node, platform):
    status, body = http(node, "GET", "/v1/domains", token=platform["token"])
    assert status == 200, body
    if isinstance(body, dict):
        body = body.get("domains", body)
    return body


def domain_names(node, platform):
    return {d["domain"] for d in domains_now(node, platform)}


def publish(node, who, topic, events):
    domain, stream = topic.split(".", 1)
    body = "\n".join(json.dumps(e) for e in events)
    status, answer = http(node, "POST", f"/v1/streams/{domain}/{stream}/events",
                          token=who["token"], body=body)
    assert status == 200 and answer["published"] == len(events), answer
    return answer


def sql(node, who, text, timeout=120):
    return http(node, "POST", "/v1/sql", token=who["token"], body={"sql": text}, timeout=timeout)


# ---------------------------------------------------------------------------------------------
# audit


def refusals_of(node, platform, who, target, settle=1.0):
    """The access.refused entries naming `who` and `target` (after `settle` s for the trail's
    asynchronous writes)."""
    entries = wait_for_audit(node, platform, lambda e: e["action"] == "access.refused"
                             and e["principal"] == f"user:{who['name']}"
                             and e["target"] == target)
    time.sleep(settle)
    return [e for e in audit(node, platform) if e["action"] == "access.refused"
            and e["principal"] == f"user:{who['name']}" and e["target"] == target] or entries


def assert_audit_intact(node, platform):
    r = cli_as(node, platform, "audit", "verify")
    assert r.returncode == 0, r.stdout + r.stderr


# ---------------------------------------------------------------------------------------------
# Kafka clients


def sasl(who, mechanism="SCRAM-SHA-256", password=None):
    return {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": mechanism,
            "sasl.username": who["name"], "sasl.password": password or who["password"]}


def admin_as(node, who, mechanism="SCRAM-SHA-256"):
    return AdminClient({"bootstrap.servers": node.bootstrap, "socket.timeout.ms": 10000,
                        **sasl(who, mechanism)})


def kp_conf(who, mechanism="SCRAM-SHA-256", password=None):
    return dict(bootstrap_servers=None, security_protocol="SASL_PLAINTEXT",
                sasl_mechanism=mechanism, sasl_plain_username=who["name"],
                sasl_plain_password=password or who["password"])


def kp(cls, node, who, mechanism="SCRAM-SHA-256", password=None, *args, **extra):
    """A kafka-python client of class `cls` signed in as `who`."""
    conf = kp_conf(who, mechanism, password)
    conf["bootstrap_servers"] = node.bootstrap
    conf.update(extra)
    return cls(*args, **conf)


def topic_state(node, platform, topic):
    """(partitions, {config: value}) as the platform sees it."""
    admin = admin_as(node, platform)
    md = admin.list_topics(topic=topic, timeout=15).topics[topic]
    assert md.error is None, md.error
    res = ConfigResource(ResourceType.TOPIC, topic)
    configs = admin.describe_configs([res], request_timeout=30)[res].result(timeout=30)
    return len(md.partitions), {k: v.value for k, v in configs.items()}


def audit_topic_config(node, platform):
    """The audit topic's settings: through Kafka as the platform when the node shows internal
    topics there, else as the node stores them (`topics/_headwater.audit.json`)."""
    admin = admin_as(node, platform)
    res = ConfigResource(ResourceType.TOPIC, AUDIT_TOPIC)
    try:
        configs = admin.describe_configs([res], request_timeout=30)[res].result(timeout=30)
        return {k: v.value for k, v in configs.items()}
    except KafkaException as e:
        if e.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
            raise
    stored = json.loads((node.data_dir / "topics" / f"{AUDIT_TOPIC}.json").read_text())
    return dict(stored["configs"], partitions=stored["partitions"])


def committed(node, platform, group):
    """{(topic, partition): offset} committed by `group`, as the platform reads it."""
    admin = admin_as(node, platform)
    fs = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)],
                                           request_timeout=30)
    try:
        got = fs[group].result(timeout=30)
    except KafkaException as e:
        if e.args[0].code() in (KafkaError.GROUP_ID_NOT_FOUND, KafkaError.COORDINATOR_NOT_AVAILABLE):
            return {}
        raise
    return {(tp.topic, tp.partition): tp.offset for tp in got.topic_partitions or []
            if tp.offset >= 0}


def commit_as(node, who, group, offsets):
    """Commits {(topic, partition): offset} for `group` as `who` (confluent-kafka)."""
    c = Consumer({"bootstrap.servers": node.bootstrap, **sasl(who), "group.id": group,
                  "enable.auto.commit": False})
    try:
        tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        return c.commit(offsets=tps, asynchronous=False)
    finally:
        c.close()


# ---------------------------------------------------------------------------------------------
# raw Kafka protocol (for abusive connections only)


def kafka_frame(api_key, version, corr, body=b"", client_id=b"attack"):
    payload = struct.pack(">hhih", api_key, version, corr, len(client_id)) + client_id + body
    return struct.pack(">i", len(payload)) + payload


def kstr(s: bytes) -> bytes:
    return struct.pack(">h", len(s)) + s


def kbytes(b: bytes) -> bytes:
    return struct.pack(">i", len(b)) + b


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def read_answer(sock):
    (size,) = struct.unpack(">i", recv_exact(sock, 4))
    return recv_exact(sock, size)


def raw_connect(node, timeout=10.0):
    return socket.create_connection(node.addr, timeout=timeout)


def api_versions_answered(sock, corr=1):
    sock.sendall(kafka_frame(18, 0, corr))
    answer = read_answer(sock)
    return struct.unpack(">ih", answer[:6]) == (corr, 0)


def sasl_handshake(sock, mechanism: bytes, corr=1):
    sock.sendall(kafka_frame(17, 1, corr, kstr(mechanism)))
    answer = read_answer(sock)
    got_corr, code = struct.unpack(">ih", answer[:6])
    assert got_corr == corr and code == 0, (got_corr, code)


def sasl_authenticate(sock, token: bytes, corr=2):
    """(error code, error message, auth bytes) of SaslAuthenticate v1."""
    sock.sendall(kafka_frame(36, 1, corr, kbytes(token)))
    answer = read_answer(sock)
    got_corr, code, mlen = struct.unpack(">ihh", answer[:8])
    pos = 8
    msg = None
    if mlen >= 0:
        msg = answer[pos:pos + mlen].decode(errors="replace")
        pos += mlen
    (blen,) = struct.unpack(">i", answer[pos:pos + 4])
    auth = answer[pos + 4:pos + 4 + max(blen, 0)]
    return code, msg, auth


def bad_plain_sign_in(node, user: bytes, password: bytes = b"wrong-password"):
    """One PLAIN sign-in with a wrong password on its own connection; its error code (None if
    the node closed the connection first)."""
    with raw_connect(node, timeout=LIVE_S) as s:
        try:
            sasl_handshake(s, b"PLAIN")
            code, _, _ = sasl_authenticate(s, b"\0" + user + b"\0" + password)
            return code
        except (ConnectionError, OSError):
            return None


def closed_within(sock, seconds):
    """True if the peer closes `sock` (EOF or reset) within `seconds`; anything it sends first
    (an error answer) is read and ignored."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            if not sock.recv(65536):
                return True
        except socket.timeout:
            return False
        except (ConnectionError, OSError):
            return True
    return False


def metric_lines(node, platform):
    status, text = http(node, "GET", "/metrics", token=platform["token"])
    assert status == 200
    return [line for line in str(text).splitlines() if line and not line.startswith("#")]


def refused_connection_counters(node, platform):
    """Samples of counters of connections refused or closed by a limit or deadline, however
    they are named: a line mentioning connections (or sign-ins) and a refusal, with its
    value."""
    out = {}
    for line in metric_lines(node, platform):
        low = line.lower()
        if any(w in low for w in ("connection", "sign_in", "signin")) and \
                any(w in low for w in ("refus", "reject", "limit", "timeout", "timed_out",
                                       "closed")):
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                pass
    return out


# ---------------------------------------------------------------------------------------------
# manifests: directories, bundles and old-format specs


SCHEMA = json.dumps({"type": "object", "properties": {"id": {"type": "string"},
                                                      "customer_id": {"type": "string"}}})


def manifest(domain, owners="[team:mallory]", streams="", pipelines=""):
    text = f"domain: {domain}\ndescription: An attacker's domain.\nowners: {owners}\n"
    if streams:
        text += "\nstreams:\n" + streams
    if pipelines:
        text += "\npipelines:\n" + pipelines
    return text


def stream_yaml(name, retention="1d", readers="[]", partitions=1, extra=""):
    return (f"  {name}:\n    description: attack\n    key: id\n    partitions: {partitions}\n"
            f"    retention: {retention}\n    contract:\n      format: json-schema\n"
            f"      schema: schemas/event.json\n      compatibility: backward\n"
            f"    readers: {readers}\n{extra}")


def write_domains(root: Path, manifests: dict) -> Path:
    """`root/<dir>/domain.yaml` per {dir: text}, each with schemas/event.json."""
    for d, text in manifests.items():
        (root / d / "schemas").mkdir(parents=True, exist_ok=True)
        (root / d / "domain.yaml").write_text(text)
        (root / d / "schemas" / "event.json").write_text(SCHEMA)
    return root


def bundle_of(root: Path) -> dict:
    """Every file under `root`, by relative path: the bundle `headwater apply` sends."""
    return {"files": {str(p.relative_to(root)): p.read_text()
                      for p in sorted(root.rglob("*")) if p.is_file()}}


def stream_def(topic, name="events", retention_ms=86_400_000, readers=(), partitions=1):
    """One stream as the old spec-list body declared it (resolved, schema inlined)."""
    return {"name": name, "topic": topic, "partitions": partitions, "key": "id",
            "retention_ms": retention_ms, "format": "json-schema", "schema": SCHEMA,
            "compatibility": "BACKWARD", "on_invalid": "reject", "rules": [],
            "readers": list(readers), "classification": {}, "grants": {}, "freshness_ms": None}


def spec(domain, streams=(), pipelines=None, owners=("team:mallory",)):
    """An old-format resolved DomainSpec (what `headwater apply` used to send)."""
    return {"domain": domain, "owners": list(owners), "governance": "self-service",
            "manifest": f"domain: {domain}\nowners: [{', '.join(owners)}]\n",
            "streams": list(streams), "pipelines": pipelines or {}}


def send_apply(node, who, vehicle, root: Path = None, specs=None):
    """Applies as `who` through `vehicle`: `cli` (`headwater apply root`), `bundle` (the bundle
    of root, POSTed) or `spec-list` (the old body, POSTed). Returns (status, answer, text):
    status is the HTTP status (the CLI's: 200 when it exited 0, else 400), answer the outcomes
    (a list) when there are any, text everything said."""
    if vehicle == "cli":
        r = cli_as(node, who, "apply", str(root), "--output", "json")
        text = r.stdout + r.stderr
        try:
            answer = json.loads(r.stdout)
        except ValueError:
            answer = None
        return (200 if r.returncode == 0 else 400), answer, text
    body = bundle_of(root) if vehicle == "bundle" else specs
    status, answer = http(node, "POST", "/v1/domains/apply", token=who["token"], body=body)
    return status, answer, json.dumps(answer) if not isinstance(answer, str) else answer


def assert_refused(status, answer, text, domain):
    """A refusal: a 4xx, or outcomes in which `domain` was not applied and has errors."""
    if 400 <= status < 500:
        if isinstance(answer, list):  # the CLI's outcomes
            for o in answer:
                if o.get("domain") == domain:
                    assert not o.get("applied") and o.get("errors"), o
        return text
    assert status == 200 and isinstance(answer, list), (status, text)
    for o in answer:
        if o.get("domain") == domain:
            assert o.get("applied") is False and o.get("errors"), f"{domain} was applied: {o}"
    errors = [e for o in answer for e in o.get("errors") or []]
    assert errors, f"nothing was refused: {text}"
    return "\n".join(errors)


def assert_old_body_refused(status, answer):
    assert status == 422, (status, answer)
    assert "bundle" in message(answer), answer


# ---------------------------------------------------------------------------------------------
# F1: the node re-derives domains from manifests


VEHICLES = ["cli", "bundle", "spec-list"]


@pytest.mark.parametrize("vehicle", VEHICLES)
def test_apply_cannot_declare_the_audit_topic(secured, tmp_path, vehicle):
    node, people = secured
    mallory, platform = people["mallory"], people["platform"]
    before = domains_now(node, platform)
    audit_before = audit_topic_config(node, platform)
    # In a manifest the topic is `<domain>.<stream>`: domain `_headwater`, stream `audit`.
    root = write_domains(tmp_path / "attack", {"mallory": manifest(
        "_headwater", streams=stream_yaml("audit", retention="1s", readers='["*"]'))})
    specs = [spec("mallory", [stream_def(AUDIT_TOPIC, name="audit", retention_ms=1000,
                                         readers=["*"])])]
    status, answer, text = send_apply(node, mallory, vehicle, root, specs)

    audit_after = audit_topic_config(node, platform)
    assert audit_after.get("retention.ms") == audit_before.get("retention.ms"), \
        "mallory changed the audit trail's retention"
    assert audit_after == audit_before
    if vehicle == "spec-list":
        assert_old_body_refused(status, answer)
    else:
        assert_refused(status, answer, text, "_headwater")
    assert domains_now(node, platform) == before
    assert_audit_intact(node, platform)


@pytest.mark.parametrize("vehicle", VEHICLES)
def test_apply_refuses_a_reserved_domain_name(secured, tmp_path, vehicle):
    node, people = secured
    mallory, platform = people["mallory"], people["platform"]
    before = domains_now(node, platform)
    root = write_domains(tmp_path / "attack", {"evil": manifest(
        "_pipeline", streams=stream_yaml("events"))})
    specs = [spec("_pipeline", [stream_def("_pipeline.events")])]
    status, answer, text = send_apply(node, mallory, vehicle, root, specs)
    if vehicle == "spec-list":
        assert_old_body_refused(status, answer)
    else:
        said = assert_refused(status, answer, text, "_pipeline")
        # The error names the file and the line of `domain:` (line 1).
        assert "evil/domain.yaml" in said, said
        assert re.search(r"domain\.yaml:1\b|line 1\b", said), said
    assert domains_now(node, platform) == before
    assert "_pipeline.events" not in admin_as(node, platform).list_topics(timeout=15).topics


@pytest.mark.parametrize("output", ["table", "view"])
@pytest.mark.parametrize("vehicle", VEHICLES)
def test_apply_refuses_a_path_out_of_the_data_dir(secured, tmp_path, vehicle, output):
    node, people = secured
    mallory, platform = people["mallory"], people["platform"]
    before = domains_now(node, platform)
    escape = f"escape-{uuid.uuid4().hex[:8]}"
    # tables/<domain>/<table> and views/<domain>/<view>.redb: three levels up is the test's
    # tmp dir, outside the node's data dir.
    name = f"../../../{escape}"
    if output == "table":
        pipe = {"mode": "batch", "inputs": ["mallory.events"],
                "sql": "SELECT id FROM mallory.events", "output": {"table": name}}
        pipe_yaml = (f"  p:\n    mode: batch\n    inputs: [mallory.events]\n"
                     f"    sql: SELECT id FROM mallory.events\n"
                     f"    output: {{ table: \"{name}\" }}\n")
    else:
        pipe = {"mode": "streaming", "inputs": ["mallory.events"],
                "output": {"view": name, "key": "id",
                           "features": {"n": {"agg": "count", "window": None, "of": None}}}}
        pipe_yaml = (f"  p:\n    mode: streaming\n    inputs: [mallory.events]\n"
                     f"    output:\n      view: \"{name}\"\n      key: id\n"
                     f"      features:\n        n: {{ agg: count }}\n")
    root = write_domains(tmp_path / "attack", {"mallory": manifest(
        "mallory", streams=stream_yaml("events"), pipelines=pipe_yaml)})
    specs = [spec("mallory", [stream_def("mallory.events")], pipelines={"p": pipe})]
    status, answer, text = send_apply(node, mallory, vehicle, root, specs)

    if "mallory" in domain_names(node, platform):
        # Applied (the hole): what running it would write.
        publish(node, mallory, "mallory.events", [{"id": "x"}])
        http(node, "POST", "/v1/pipelines/mallory/p/run", token=mallory["token"])
        time.sleep(2)
    outside = [p for p in tmp_path.rglob(f"{escape}*")
               if node.data_dir.resolve() not in p.resolve().parents]
    assert not outside, f"written outside the data dir: {outside}"
    if vehicle == "spec-list":
        assert_old_body_refused(status, answer)
    else:
        assert_refused(status, answer, text, "mallory")
    assert domains_now(node, platform) == before
    _, pipes = http(node, "GET", "/v1/pipelines", token=platform["token"])
    assert "mallory." not in json.dumps(pipes)


@pytest.mark.parametrize("vehicle", ["bundle", "spec-list"])
def test_apply_refuses_another_domains_dead_letter_topic(secured, tmp_path, vehicle):
    node, people = secured
    mallory, platform = people["mallory"], people["platform"]
    before = domains_now(node, platform)
    dlq_before = topic_state(node, platform, SETTLED_DLQ)
    # As a manifest: domain `payments.transaction_settled`, stream `dlq`.
    root = write_domains(tmp_path / "attack", {"mallory": manifest(
        "payments.transaction_settled", streams=stream_yaml("dlq", retention="1s",
                                                            readers='["*"]'))})
    specs = [spec("mallory", [stream_def(SETTLED_DLQ, name="dlq", retention_ms=1000,
                                         readers=["*"])])]
    status, answer, text = send_apply(node, mallory, vehicle, root, specs)

    assert topic_state(node, platform, SETTLED_DLQ) == dlq_before
    if vehicle == "spec-list":
        assert_old_body_refused(status, answer)
    else:
        assert_refused(status, answer, text, "payments.transaction_settled")
    assert domains_now(node, platform) == before
    # Still payments' dead letters: mallory may not read them.
    status, answer = http(node, "GET", "/v1/streams/payments/transaction_settled.dlq/events"
                          "?follow=false&from=earliest", token=mallory["token"])
    assert status == 403, (status, answer)


@pytest.mark.parametrize("path", ["/tmp/evil/domain.yaml", "../evil/domain.yaml",
                                  "evil/../../domain.yaml", "schema:/etc/hostname",
                                  "schema:../../../../../../etc/hostname"])
def test_bundle_paths_must_stay_in_the_bundle(secured, path):
    """A bundle names its files relative to itself: an absolute path or `..` is refused, and a
    manifest's schema reference never reaches the node's own files."""
    node, people = secured
    mallory, platform = people["mallory"], people["platform"]
    before = domains_now(node, platform)
    text = manifest("mallory", streams=stream_yaml("events"))
    if path.startswith("schema:"):
        files = {"mallory/domain.yaml": text.replace("schemas/event.json", path[len("schema:"):])}
    else:
        files = {path: text, str(Path(path).parent / "schemas" / "event.json"): SCHEMA}
    status, answer = http(node, "POST", "/v1/domains/apply", token=mallory["token"],
                          body={"files": files})
    if not path.startswith("schema:"):
        assert status == 422, (status, answer)
    else:
        assert_refused(status, answer, json.dumps(answer), "mallory")
    hostname = Path("/etc/hostname").read_text().strip() if Path("/etc/hostname").exists() else None
    if hostname:
        assert hostname not in json.dumps(domains_now(node, platform))
    assert domains_now(node, platform) == before


def test_cli_apply_still_applies_a_new_domain_of_its_caller(secured, tmp_path):
    node, people = secured
    mallory, platform = people["mallory"], people["platform"]
    root = write_domains(tmp_path / "mine", {"mallory": manifest(
        "mallory", streams=stream_yaml("events"))})
    r = cli_as(node, mallory, "apply", str(root))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "mallory: applied" in r.stdout, r.stdout
    assert "mallory" in domain_names(node, platform)
    publish(node, mallory, "mallory.events", [{"id": "1"}])
    applied = [e for e in audit(node, platform) if e["action"] == "domain.apply"
               and e["target"] == "mallory"]
    assert applied and applied[-1]["principal"] == "user:mallory"


# ---------------------------------------------------------------------------------------------
# F2: a refused manifest grants nothing


def test_refused_manifest_in_the_same_apply_grants_nothing(secured, tmp_path):
    node, people = secured
    mallory, platform = people["mallory"], people["platform"]
    before = domains_now(node, platform)
    root = tmp_path / "domains"
    shutil.copytree(EXAMPLES, root)
    payments = root / "payments" / "domain.yaml"
    text = payments.read_text()
    for old, new in [("    readers: [finance, ml, marketing]\n",
                      "    readers: [finance, ml, marketing, mallory]\n"),
                     ("    grants: { pii: [ml, marketing] }\n",
                      "    grants: { pii: [ml, marketing, mallory] }\n")]:
        assert old in text
        text = text.replace(old, new)
    payments.write_text(text)
    write_domains(root, {"mallory": manifest("mallory", pipelines=(
        "  spend:\n    mode: streaming\n    inputs: [payments.transaction_settled]\n"
        "    output:\n      view: spend\n      key: customer_id\n"
        "      features:\n        n: { agg: count }\n        total: { agg: sum, of: amount }\n"))})

    r = cli_as(node, mallory, "apply", str(root), "--output", "json")
    assert r.returncode != 0, r.stdout + r.stderr
    outcomes = json.loads(r.stdout)
    by = {o["domain"]: o for o in outcomes}
    assert by["payments"]["applied"] is False and by["payments"]["errors"], by["payments"]
    assert "mallory" in by, outcomes
    assert by["mallory"]["applied"] is False, by["mallory"]
    said = " ".join(by["mallory"]["errors"])
    assert "readers" in said or "grant" in said, said

    assert "mallory" not in domain_names(node, platform)
    assert domains_now(node, platform) == before
    _, pipes = http(node, "GET", "/v1/pipelines", token=platform["token"])
    assert "mallory." not in json.dumps(pipes), pipes
    status, answer = http(node, "GET", "/v1/streams/payments/transaction_settled/events"
                          "?follow=false&from=earliest", token=mallory["token"])
    assert status == 403, (status, answer)


# ---------------------------------------------------------------------------------------------
# F3: /v1/sql is read-only and bounded


WRITES = {
    "copy": "COPY (SELECT 1 AS x) TO '{out}'",
    "copy-unreadable": "COPY (SELECT * FROM payments.chargeback_opened) TO '{out}'",
    "create-table-as": "CREATE TABLE t AS SELECT 1 AS x",
    "create-external-table": "CREATE EXTERNAL TABLE etc STORED AS CSV LOCATION '/etc/'",
    "insert": "INSERT INTO payments.transaction_settled (transaction_id) VALUES ('x')",
    "drop": "DROP TABLE payments.transaction_settled",
    "set": "SET datafusion.execution.target_partitions = 1",
}


@pytest.mark.parametrize("kind", list(WRITES))
def test_sql_runs_only_read_only_queries(secured, tmp_path, kind):
    node, people = secured
    pay, fin, platform = people["pay"], people["fin"], people["platform"]
    publish(node, pay, SETTLED, [TXN])
    out = tmp_path / "pwned.csv"
    who = fin if kind == "copy-unreadable" else pay
    status, answer = sql(node, who, WRITES[kind].format(out=out))
    assert not out.exists(), f"{kind} wrote {out}"
    assert 400 <= status < 500, (status, answer)
    if kind == "copy":
        assert "read-only" in message(answer), answer
    # Nothing changed: the stream still reads as before.
    status, answer = sql(node, platform, f"SELECT count(*) AS n FROM {SETTLED}")
    assert status == 200 and answer["rows"] in ([[1]], [{"n": 1}]), answer


def sql_config(**kv):
    return "[sql]\n" + "".join(f"{k} = {v}\n" for k, v in kv.items())


def assert_still_answers(node, who):
    status, answer = sql(node, who, "SELECT 1 AS one", timeout=LIVE_S)
    assert status == 200, (status, answer)


def test_sql_memory_is_bounded(make_node, people):
    node = start_secured(make_node, people, sql_config(max_memory_bytes=16 * 1024 * 1024),
                         apply_examples=False)
    who = people["mallory"]
    # ~20 million distinct groups (table functions are refused: rows come from unnest).
    big = ("SELECT v, count(*) AS n FROM (SELECT unnest(range(0, 20000000)) AS v) "
           "GROUP BY v ORDER BY n DESC LIMIT 1")
    status, answer = sql(node, who, big, timeout=90)
    assert 400 <= status < 500, (status, str(answer)[:500])
    assert "memory" in message(answer).lower(), answer
    assert_still_answers(node, who)


def test_sql_time_is_bounded(make_node, people):
    node = start_secured(make_node, people, sql_config(timeout_ms=1000), apply_examples=False)
    who = people["mallory"]
    # Slow and small: a recursive query counting to a hundred million one row at a time.
    long = ("WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t "
            "WHERE n < 100000000) SELECT count(*) AS n FROM t")
    status, answer = sql(node, who, long, timeout=60)
    assert 400 <= status < 500, (status, str(answer)[:500])
    said = message(answer).lower()
    assert "time" in said and ("limit" in said or "timeout" in said or "timed out" in said), \
        answer
    assert_still_answers(node, who)


# ---------------------------------------------------------------------------------------------
# F4: the follow route's group is checked however the query is encoded


@pytest.mark.parametrize("query", ["group=marketing.g", "%67roup=marketing.g",
                                   "gr%6Fup=marketing.g", "%67%72%6F%75%70=marketing.g",
                                   "group=marketing%2Eg", "group=%6Darketing.g"])
def test_follow_with_another_domains_group_is_refused(secured, query):
    node, people = secured
    pay, fin, platform = people["pay"], people["fin"], people["platform"]
    publish(node, pay, SETTLED, [dict(TXN, transaction_id=f"t-{i}") for i in range(3)])
    # finance reads the stream but does not own marketing.
    status, answer = http(node, "GET", "/v1/streams/payments/transaction_settled/events?"
                          f"{query}&follow=false&from=earliest", token=fin["token"])
    assert status == 403, (status, str(answer)[:300])
    assert committed(node, platform, "marketing.g") == {}
    # The control: its own group reads and commits.
    status, answer = http(node, "GET", "/v1/streams/payments/transaction_settled/events?"
                          "group=finance.g&follow=false&from=earliest", token=fin["token"])
    assert status == 200 and "t-2" in str(answer), (status, answer)
    assert committed(node, platform, "finance.g"), "the control group committed nothing"


# ---------------------------------------------------------------------------------------------
# F5: failed sign-ins are bounded on the record


def test_a_flood_of_failed_sign_ins_is_sampled(secured):
    node, people = secured
    fin, pay, platform = people["fin"], people["pay"], people["platform"]
    filler = "q" * (100 * 1024)
    seq_before = max(e["seq"] for e in audit(node, platform))

    probe_failures, stop = [], threading.Event()

    def probe():
        while not stop.is_set():
            try:
                status, _ = http(node, "GET", "/v1/catalog", token=fin["token"], timeout=LIVE_S)
                if status != 200:
                    probe_failures.append(status)
            except Exception as e:  # noqa: BLE001 - any failure to answer counts
                probe_failures.append(repr(e))
            time.sleep(0.1)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    try:
        for i in range(300):
            status, _ = http(node, "GET", "/v1/catalog", token=f"hw_wrong-{i}", timeout=LIVE_S)
            assert status == 401
        codes = [bad_plain_sign_in(node, f"{filler}{i}".encode()) for i in range(50)]
        # SASL_AUTHENTICATION_FAILED (58), or closed by a node that no longer reads them.
        assert all(c in (58, None) for c in codes), codes
    finally:
        stop.set()
        prober.join(timeout=LIVE_S + 5)
    assert not probe_failures, probe_failures[:5]
    p = Producer({"bootstrap.servers": node.bootstrap, **sasl(pay)})
    p.produce(CHARGEBACKS, json.dumps(CHARGEBACK).encode())
    assert p.flush(LIVE_S) == 0

    time.sleep(2)
    flood = [e for e in audit(node, platform)
             if e["seq"] > seq_before and e["action"] == "auth.failed"]
    assert flood, "the failed sign-ins are not on the record at all"
    assert len(flood) <= 10, f"{len(flood)} auth.failed entries for one flood"
    for e in flood:
        assert "q" * 257 not in json.dumps(e), "a user name longer than 256 characters"
    counts = [v for e in flood for k, v in (e.get("after") or {}).items()
              if "count" in k and isinstance(v, int)]
    assert counts and max(counts) > 1, f"the sampled entries carry no count: {flood[:2]}"
    assert_audit_intact(node, platform)


def test_audit_pages_with_a_limit_and_a_cursor(secured):
    node, people = secured
    platform, fin = people["platform"], people["fin"]
    for i in range(3):  # a few more entries
        http(node, "POST", "/v1/streams/payments/chargeback_opened/events", token=fin["token"],
             body=json.dumps(CHARGEBACK))
    time.sleep(1)
    everything = audit(node, platform)
    assert len(everything) > 10
    status, first = http(node, "GET", "/v1/audit?limit=5", token=platform["token"])
    assert status == 200, first
    assert 0 < len(first["entries"]) <= 5, first
    assert first.get("next"), f"no `next` cursor: {list(first)}"
    status, second = http(node, "GET", f"/v1/audit?limit=5&after={first['next']}",
                          token=platform["token"])
    assert status == 200, second
    assert 0 < len(second["entries"]) <= 5
    seqs = [e["seq"] for e in first["entries"] + second["entries"]]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs
    all_seqs = [e["seq"] for e in everything]
    start = all_seqs.index(seqs[0])
    assert all_seqs[start:start + len(seqs)] == seqs, "the second page does not continue the first"


# ---------------------------------------------------------------------------------------------
# F6: connection limits and deadlines


def assert_serving_with_refusals_counted(node, people, at_least):
    """The node still answers a signed-in admin client, and `/metrics` counts at least
    `at_least` connections its limits closed."""
    admin = admin_as(node, people["platform"])
    assert admin.list_topics(timeout=LIVE_S).topics is not None
    counters = refused_connection_counters(node, people["platform"])
    assert any(v >= at_least for v in counters.values()), counters


def test_a_kafka_connection_that_never_signs_in_is_closed(make_node, people):
    node = start_secured(make_node, people, "[kafka]\nsign_in_timeout_ms = 1000\n",
                         apply_examples=False)
    silent = raw_connect(node)
    asked = raw_connect(node)
    assert api_versions_answered(asked)
    try:
        assert closed_within(silent, LIVE_S), "a silent connection was kept open"
        assert closed_within(asked, LIVE_S), "a connection that never signed in was kept open"
    finally:
        silent.close()
        asked.close()
    assert_serving_with_refusals_counted(node, people, at_least=2)


def test_a_signed_in_kafka_connection_left_idle_is_closed(make_node, people):
    node = start_secured(make_node, people, "[kafka]\nidle_timeout_ms = 2000\n",
                         apply_examples=False)
    with raw_connect(node) as s:
        sasl_handshake(s, b"PLAIN")
        code, msg, _ = sasl_authenticate(
            s, b"\0" + people["pay"]["name"].encode() + b"\0" + people["pay"]["password"].encode())
        assert code == 0, msg
        assert closed_within(s, LIVE_S), "an idle signed-in connection was kept open"


def test_kafka_connections_over_the_limit_are_closed(make_node, people):
    node = start_secured(make_node, people, "[kafka]\nmax_connections = 5\n",
                         apply_examples=False)
    first = [raw_connect(node) for _ in range(5)]
    extra = []
    try:
        for i, s in enumerate(first):
            assert api_versions_answered(s, corr=10 + i)
        for _ in range(3):
            s = raw_connect(node)
            extra.append(s)
            try:
                s.sendall(kafka_frame(18, 0, 99))
            except OSError:
                pass
            assert closed_within(s, LIVE_S), "a connection over max_connections was kept"
        for i, s in enumerate(first):
            assert api_versions_answered(s, corr=20 + i), "a connection within the limit broke"
    finally:
        for s in first + extra:
            s.close()
    time.sleep(1)
    assert_serving_with_refusals_counted(node, people, at_least=3)


def test_an_http_request_with_an_unfinished_header_is_closed(make_node, people):
    node = start_secured(make_node, people, "[http]\nheader_read_timeout_ms = 1000\n",
                         apply_examples=False)
    with socket.create_connection(("127.0.0.1", node.http_port), timeout=10) as s:
        s.sendall(b"GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        assert closed_within(s, LIVE_S), "a request whose header never ends was kept open"
    status, _ = http(node, "GET", "/v1/status", token=people["fin"]["token"], timeout=LIVE_S)
    assert status == 200


def test_open_event_streams_and_half_sent_requests_do_not_hold_a_stop(make_node, people):
    """SIGTERM stops the node promptly even while a follower streams and a client sits in the
    middle of a request header: connections that never end cannot keep the node up."""
    node = start_secured(make_node, people)
    req = urllib.request.Request(
        node.http_url + "/v1/streams/payments/transaction_settled/events")
    req.add_header("Authorization", f"Bearer {people['fin']['token']}")
    follower = urllib.request.urlopen(req, timeout=LIVE_S)
    assert follower.status == 200
    slow = socket.create_connection(("127.0.0.1", node.http_port), timeout=10)
    slow.sendall(b"GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    try:
        started = time.monotonic()
        assert node.stop(timeout=LIVE_S) == 0
        assert time.monotonic() - started < LIVE_S
    finally:
        follower.close()
        slow.close()


def test_event_streams_over_the_limit_are_refused(make_node, people):
    node = start_secured(make_node, people, "[http]\nmax_event_streams = 2\n")
    fin = people["fin"]
    path = "/v1/streams/payments/transaction_settled/events"
    open_streams = []
    try:
        for _ in range(2):
            req = urllib.request.Request(node.http_url + path)
            req.add_header("Authorization", f"Bearer {fin['token']}")
            resp = urllib.request.urlopen(req, timeout=LIVE_S)
            assert resp.status == 200
            open_streams.append(resp)
        status, answer = http(node, "GET", path, token=fin["token"], timeout=LIVE_S)
        assert status in (429, 503), (status, answer)
        said = message(answer)
        assert "max_event_streams" in said or "limit" in said.lower(), said
    finally:
        for r in open_streams:
            r.close()
    status, _ = http(node, "GET", "/v1/status", token=fin["token"], timeout=LIVE_S)
    assert status == 200


# ---------------------------------------------------------------------------------------------
# F7: a burst of bad sign-ins does not stall signed-in clients


def test_a_burst_of_bad_plain_sign_ins_does_not_stall_a_producer(secured):
    node, people = secured
    pay = people["pay"]
    producer = Producer({"bootstrap.servers": node.bootstrap, **sasl(pay), "linger.ms": 0})
    producer.produce(CHARGEBACKS, json.dumps(CHARGEBACK).encode())
    assert producer.flush(LIVE_S) == 0  # signed in before the burst

    stop, attempts = threading.Event(), []

    def attacker():
        while not stop.is_set():
            attempts.append(bad_plain_sign_in(node, pay["name"].encode()))

    threads = [threading.Thread(target=attacker, daemon=True) for _ in range(200)]
    for t in threads:
        t.start()
    waits = []
    try:
        time.sleep(1)
        for i in range(10):
            started = time.monotonic()
            producer.produce(CHARGEBACKS, json.dumps(dict(CHARGEBACK,
                                                          chargeback_id=f"b-{i}")).encode())
            left = producer.flush(LIVE_S)
            waits.append(round(time.monotonic() - started, 2))
            assert left == 0, f"a produce did not complete within {LIVE_S}s of the burst: {waits}"
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=LIVE_S + 10)
    assert len(attempts) >= 200, len(attempts)


# ---------------------------------------------------------------------------------------------
# F8: no user enumeration through SCRAM


def scram_first_answer(node, user: str):
    """The server-first message for `user` (SCRAM-SHA-256) as {r, s, i}."""
    with raw_connect(node) as s:
        sasl_handshake(s, b"SCRAM-SHA-256")
        nonce = base64.b64encode(os.urandom(18)).decode()
        code, msg, auth = sasl_authenticate(s, f"n,,n={user},r={nonce}".encode())
        assert code == 0, (code, msg)
    fields = dict(part.split("=", 1) for part in auth.decode().split(","))
    assert fields["r"].startswith(nonce)
    return fields


def test_scram_does_not_tell_unknown_users_apart(make_node, people):
    node = start_secured(make_node, people, apply_examples=False)
    ghost = [scram_first_answer(node, "nobody-here") for _ in range(2)]
    real = scram_first_answer(node, people["fin"]["name"])
    assert ghost[0]["s"] == ghost[1]["s"], "an unknown user's salt changes from try to try"
    assert ghost[0]["i"] == real["i"]
    assert len(base64.b64decode(ghost[0]["s"])) == len(base64.b64decode(real["s"]))
    assert scram_first_answer(node, people["fin"]["name"])["s"] == real["s"]


# ---------------------------------------------------------------------------------------------
# F9: settings a manifest governs change only through the manifest


@pytest.mark.parametrize("key,value", [("headwater.validation", "none"),
                                       ("retention.ms", "1000")])
def test_owner_cannot_change_manifest_settings_through_kafka(secured, key, value):
    node, people = secured
    pay, platform = people["pay"], people["platform"]
    before = topic_state(node, platform, SETTLED)
    assert before[1][key] != value
    admin = admin_as(node, pay)
    res = ConfigResource(ResourceType.TOPIC, SETTLED, incremental_configs=[
        ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(KafkaException) as refused:
        admin.incremental_alter_configs([res], request_timeout=30)[res].result(timeout=30)
    err = refused.value.args[0]
    assert err.code() in (KafkaError.POLICY_VIOLATION, KafkaError.TOPIC_AUTHORIZATION_FAILED,
                          KafkaError.INVALID_CONFIG), err
    assert "manifest" in err.str(), err.str()
    assert topic_state(node, platform, SETTLED) == before


# ---------------------------------------------------------------------------------------------
# Matrix: refusals that hold today, through the clients test_access.py does not cover


@pytest.mark.parametrize("client", ["confluent-kafka", "kafka-python", "curl"])
def test_no_credentials(secured, client):
    node, people = secured
    if client == "confluent-kafka":
        admin = AdminClient({"bootstrap.servers": node.bootstrap, "socket.timeout.ms": 5000})
        with pytest.raises(KafkaException):
            admin.list_topics(timeout=8)
        assert "requires SASL" in node.log_text()
    elif client == "kafka-python":
        from kafka import KafkaProducer
        from kafka.errors import KafkaError as PyKafkaError
        with pytest.raises(PyKafkaError):
            KafkaProducer(bootstrap_servers=node.bootstrap, request_timeout_ms=5000,
                          max_block_ms=5000).send(CHARGEBACKS, b"{}").get(timeout=10)
    else:
        status, body = curl(node, "/v1/catalog")
        assert status == 401 and "requires a bearer token" in body, body
        status, body = curl(node, "/v1/streams/payments/chargeback_opened/events",
                            method="POST", body=json.dumps(CHARGEBACK))
        assert status == 401, body
    status, answer = sql(node, people["platform"], f"SELECT count(*) AS n FROM {CHARGEBACKS}")
    assert status == 200 and answer["rows"] in ([[0]], [{"n": 0}]), answer


@pytest.mark.parametrize("client", ["confluent-kafka-PLAIN", "confluent-kafka-SCRAM-SHA-256",
                                    "confluent-kafka-SCRAM-SHA-512", "kafka-python-PLAIN",
                                    "curl"])
def test_wrong_password(secured, client):
    node, people = secured
    pay, platform = people["pay"], people["platform"]
    if client.startswith("confluent-kafka"):
        mechanism = client[len("confluent-kafka-"):]
        errors = []
        p = Producer({"bootstrap.servers": node.bootstrap, "message.timeout.ms": 8000,
                      "error_cb": errors.append, **sasl(pay, mechanism, password="wrong")})
        delivered = []
        p.produce(CHARGEBACKS, json.dumps(CHARGEBACK).encode(),
                  on_delivery=lambda err, msg: delivered.append(err))
        p.flush(15)
        assert delivered and delivered[0] is not None, "delivered with a wrong password"
        assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors
        assert any("unknown user or wrong password" in e.str() for e in errors), errors
    elif client == "kafka-python-PLAIN":
        from kafka import KafkaProducer
        from kafka.errors import KafkaError as PyKafkaError
        with pytest.raises(PyKafkaError):
            kp(KafkaProducer, node, pay, "PLAIN", "wrong", request_timeout_ms=5000,
               max_block_ms=5000).send(CHARGEBACKS, b"{}").get(timeout=10)
        mechanism = "PLAIN"
    else:
        status, body = curl(node, "/v1/catalog", token="hw_" + "A" * 43)
        assert status == 401 and "not one this node issued" in body, body
        mechanism = "bearer"
    failed = wait_for_audit(node, platform, lambda e: e["action"] == "auth.failed"
                            and e["after"]["mechanism"] == mechanism)
    assert failed, f"the failed {mechanism} sign-in is not on the record"
    if mechanism != "bearer":
        assert all(e["principal"] == "user:pay-svc" for e in failed), failed
    status, answer = sql(node, platform, f"SELECT count(*) AS n FROM {CHARGEBACKS}")
    assert status == 200 and answer["rows"] in ([[0]], [{"n": 0}]), answer


DOMAIN_OF = {"pay-svc": "payments", "fin-svc": "finance", "growth-svc": "marketing",
             "mallory": "mallory"}


def read_with(client, node, who, topic, group=None):
    """Tries to read `topic` as `who` (in consumer group `group`, else by assignment or in a
    group of its own domain); returns what the client said (an error's code name or text), or
    fails if a record came back."""
    if client == "confluent-kafka":
        c = Consumer({"bootstrap.servers": node.bootstrap, **sasl(who),
                      "group.id": group or f"{DOMAIN_OF[who['name']]}.reader",
                      "auto.offset.reset": "earliest"})
        c.subscribe([topic])
        got = first_message(c)
        assert isinstance(got, KafkaError), f"read {got!r}"
        return f"{got.name()}: {got.str()}"
    if client == "kafka-python":
        from kafka import KafkaConsumer, TopicPartition as KpTopicPartition
        from kafka.errors import KafkaError as PyKafkaError
        c = kp(KafkaConsumer, node, who, "SCRAM-SHA-512", None,
               group_id=group, auto_offset_reset="earliest", consumer_timeout_ms=8000)
        try:
            with pytest.raises(PyKafkaError) as refused:
                if group:
                    c.subscribe([topic])
                else:
                    # kafka-python reads an unauthorized topic as an empty one; its offsets
                    # lookup is where the refusal shows.
                    tp = KpTopicPartition(topic, 0)
                    c.assign([tp])
                    c.position(tp, timeout_ms=10000)
                for m in c:
                    pytest.fail(f"read {m.value!r}")
                pytest.fail("no error and no record")
            return f"{type(refused.value).__name__}: {refused.value}"
        finally:
            c.close()
    if client == "kcat":
        extra = ["-G", group, topic] if group else ["-C", "-t", topic]
        r = kcat_on(node, *kcat_args(who, "SCRAM-SHA-512"), *extra, "-e", "-o", "beginning",
                 timeout=40)
        assert r.returncode != 0 or not r.stdout.strip(), r.stdout
        return r.stderr
    domain, stream = topic.split(".", 1)
    q = "?follow=false&from=earliest" + (f"&group={group}" if group else "")
    status, body = curl(node, f"/v1/streams/{domain}/{stream}/events{q}", token=who["token"])
    assert status == 403, (status, body)
    return body


@pytest.mark.parametrize("client", ["kafka-python", "curl"])
def test_reading_a_stream_without_being_a_reader(secured, client):
    """finance.ledger_entry is read by ml only; growth (marketing) tries."""
    node, people = secured
    growth, platform = people["growth"], people["platform"]
    said = read_with(client, node, growth, LEDGER)
    assert "topic_authorization_failed" in said.lower() or "topicauthorizationfailed" in \
        said.lower() or "readers are [ml]" in said, said
    assert refusals_of(node, platform, growth, LEDGER)
    if client == "curl":
        status, body = curl(node, "/v1/sql", token=growth["token"], method="POST",
                            body=json.dumps({"sql": f"SELECT * FROM {LEDGER}"}))
        assert status == 403 and "readers are [ml]" in body, body


@pytest.mark.parametrize("client", ["confluent-kafka", "kafka-python", "kcat", "curl"])
def test_reading_a_pii_stream_without_readership_or_grant(secured, client):
    """chargeback_opened carries customer_id (pii), read by ml only; marketing (growth) has
    neither readership nor a pii grant on it."""
    if client == "kcat" and KCAT is None:
        pytest.skip("kcat not installed")
    node, people = secured
    pay, growth, platform = people["pay"], people["growth"], people["platform"]
    publish(node, pay, CHARGEBACKS, [CHARGEBACK])
    said = read_with(client, node, growth, CHARGEBACKS)
    assert "topic authorization failed" in said.lower() or "topic_authorization_failed" in \
        said.lower() or "topicauthorizationfailed" in said.lower() or "readers are [ml]" in said, \
        said
    if client == "curl":
        status, body = curl(node, "/v1/sql", token=growth["token"], method="POST",
                            body=json.dumps({"sql": f"SELECT customer_id FROM {CHARGEBACKS}"}))
        assert status == 403, body
        assert "c-1" not in body
    assert refusals_of(node, platform, growth, CHARGEBACKS)


@pytest.mark.parametrize("client", ["confluent-kafka", "confluent-kafka-commit", "kafka-python",
                                    "kcat", "curl"])
def test_using_another_domains_consumer_group(secured, client):
    """finance reads payments.transaction_settled, but group payments.* is payments'."""
    if client == "kcat" and KCAT is None:
        pytest.skip("kcat not installed")
    node, people = secured
    pay, fin, platform = people["pay"], people["fin"], people["platform"]
    publish(node, pay, SETTLED, [dict(TXN, transaction_id=f"t-{i}") for i in range(6)])
    assert commit_as(node, pay, PAYMENTS_GROUP, {(SETTLED, 0): 0})
    before = committed(node, platform, PAYMENTS_GROUP)
    assert before == {(SETTLED, 0): 0}

    if client == "confluent-kafka-commit":
        # Committing offsets for the group without joining it (OffsetCommit from the admin API).
        admin = admin_as(node, fin)  # kept: a collected client never completes its futures
        fut = admin.alter_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(PAYMENTS_GROUP, [TopicPartition(SETTLED, p, 5)
                                                           for p in range(6)])],
            request_timeout=30)[PAYMENTS_GROUP]
        with pytest.raises(KafkaException) as refused:
            fut.result(timeout=40)
        assert refused.value.args[0].code() == KafkaError.GROUP_AUTHORIZATION_FAILED, \
            refused.value
    else:
        said = read_with(client, node, fin, SETTLED, group=PAYMENTS_GROUP).lower()
        assert "group_authorization_failed" in said or "groupauthorizationfailed" in said \
            or "may not use consumer group" in said, said

    assert committed(node, platform, PAYMENTS_GROUP) == before
    # Over HTTP the refusal is of consuming the stream in that group.
    refused = wait_for_audit(node, platform, lambda e: e["action"] == "access.refused"
                             and e["principal"] == "user:fin-svc"
                             and PAYMENTS_GROUP in (e["target"] + e["after"]["why"]))
    assert refused, "the refusal is not on the record"


@pytest.mark.parametrize("action", ["produce", "consume"])
@pytest.mark.parametrize("client", ["confluent-kafka", "kafka-python", "kcat"])
def test_internal_topics_are_the_platforms(secured, client, action):
    if client == "kcat" and KCAT is None:
        pytest.skip("kcat not installed")
    node, people = secured
    pay, platform = people["pay"], people["platform"]  # owns a domain, not the platform
    marker = f"forged-{uuid.uuid4().hex}"
    forged = json.dumps({"seq": 0, "principal": "user:platform", "action": marker})
    if action == "consume":
        said = read_with(client, node, pay, AUDIT_TOPIC).lower()
        assert "topic authorization failed" in said or "topic_authorization_failed" in said \
            or "topicauthorizationfailed" in said, said
    elif client == "confluent-kafka":
        p = Producer({"bootstrap.servers": node.bootstrap, **sasl(pay),
                      "message.timeout.ms": 10000})
        results = []
        p.produce(AUDIT_TOPIC, forged.encode(), on_delivery=lambda e, m: results.append(e))
        p.flush(20)
        assert results and results[0] is not None, "the forged entry was delivered"
        assert results[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, results[0]
    elif client == "kafka-python":
        from kafka import KafkaProducer
        from kafka.errors import TopicAuthorizationFailedError
        p = kp(KafkaProducer, node, pay, "PLAIN", None, request_timeout_ms=10000,
               max_block_ms=10000)
        try:
            with pytest.raises(TopicAuthorizationFailedError):
                p.send(AUDIT_TOPIC, forged.encode()).get(timeout=20)
        finally:
            p.close(timeout=5)
    else:
        r = kcat_on(node, *kcat_args(pay, "SCRAM-SHA-256"), "-P", "-t", AUDIT_TOPIC,
                 input_text=forged + "\n")
        assert "authorization failed" in r.stderr.lower(), r.stderr
    assert refusals_of(node, platform, pay, AUDIT_TOPIC)
    entries = audit(node, platform)
    assert not any(e["action"] == marker for e in entries)
    assert_audit_intact(node, platform)


ADMIN_ATTACKS = ["delete-topics", "create-partitions", "alter-configs", "delete-groups"]


def admin_attack_confluent(node, who, attack):
    admin = admin_as(node, who)
    if attack == "delete-topics":
        fut = admin.delete_topics([SETTLED], operation_timeout=30, request_timeout=30)[SETTLED]
        expected = KafkaError.TOPIC_AUTHORIZATION_FAILED
    elif attack == "create-partitions":
        fut = admin.create_partitions([NewPartitions(SETTLED, 12)], request_timeout=30)[SETTLED]
        expected = KafkaError.TOPIC_AUTHORIZATION_FAILED
    elif attack == "alter-configs":
        res = ConfigResource(ResourceType.TOPIC, SETTLED, incremental_configs=[
            ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)])
        fut = admin.incremental_alter_configs([res], request_timeout=30)[res]
        expected = KafkaError.TOPIC_AUTHORIZATION_FAILED
    else:
        fut = admin.delete_consumer_groups([PAYMENTS_GROUP], request_timeout=30)[PAYMENTS_GROUP]
        expected = KafkaError.GROUP_AUTHORIZATION_FAILED
    with pytest.raises(KafkaException) as refused:
        fut.result(timeout=40)
    assert refused.value.args[0].code() == expected, refused.value


def admin_attack_kafka_python(node, who, attack):
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource as KpConfigResource, NewPartitions as KpNewPartitions
    from kafka.errors import (GroupAuthorizationFailedError, KafkaError as PyKafkaError,
                              TopicAuthorizationFailedError)
    admin = kp(KafkaAdminClient, node, who, "SCRAM-SHA-512", None, request_timeout_ms=20000)
    try:
        if attack == "delete-topics":
            with pytest.raises(TopicAuthorizationFailedError):
                admin.delete_topics([SETTLED], timeout_ms=20000)
        elif attack == "create-partitions":
            with pytest.raises(TopicAuthorizationFailedError):
                admin.create_partitions({SETTLED: KpNewPartitions(total_count=12)},
                                        timeout_ms=20000)
        elif attack == "alter-configs":
            try:
                result = admin.alter_configs(
                    [KpConfigResource("TOPIC", SETTLED, configs={"retention.ms": "1000"})],
                    incremental=True)
            except PyKafkaError as e:
                assert "uthorization" in type(e).__name__, e
            else:
                assert "uthorization" in repr(result), result
        else:
            try:
                result = admin.delete_groups([PAYMENTS_GROUP])
            except GroupAuthorizationFailedError:
                pass
            else:
                assert "GroupAuthorizationFailed" in repr(result), result
    finally:
        admin.close()


@pytest.mark.parametrize("attack", ADMIN_ATTACKS)
@pytest.mark.parametrize("client", ["confluent-kafka", "kafka-python"])
def test_non_owner_administration_of_payments(secured, client, attack):
    """finance reads payments.transaction_settled; it may not administer it or its groups."""
    node, people = secured
    pay, fin, platform = people["pay"], people["fin"], people["platform"]
    publish(node, pay, SETTLED, [TXN])
    assert commit_as(node, pay, PAYMENTS_GROUP, {(SETTLED, 0): 0})
    topic_before = topic_state(node, platform, SETTLED)
    assert topic_before[0] == 6
    group_before = committed(node, platform, PAYMENTS_GROUP)
    assert group_before

    (admin_attack_confluent if client == "confluent-kafka" else admin_attack_kafka_python)(
        node, fin, attack)

    assert topic_state(node, platform, SETTLED) == topic_before
    assert committed(node, platform, PAYMENTS_GROUP) == group_before
    target = PAYMENTS_GROUP if attack == "delete-groups" else SETTLED
    refused = refusals_of(node, platform, fin, target, settle=2.0)
    # One entry per refused request: librdkafka may send DeleteGroups' FindCoordinator on its
    # bootstrap connection and again on the broker's.
    requests = 2 if (client, attack) == ("confluent-kafka", "delete-groups") else 1
    assert 1 <= len(refused) <= requests, f"one attempt, {len(refused)} entries: {refused}"
