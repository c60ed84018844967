"""Access control derived from ownership, through real clients: Kafka clients sign in with
SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) from kcat (librdkafka 2.0.2), confluent-kafka (a
current librdkafka) and kafka-python; HTTP callers with bearer tokens. The refusal matrix:
no credentials, wrong password, another domain's stream, a reader without the grant (allowed
once the owner's manifest adds it), a pii field exposed without a grant, a centrally governed
domain changed by its owner. Every refusal is in the audit trail."""

import json
import shutil
import urllib.error
import urllib.request

import pytest
from confluent_kafka import Consumer, KafkaError, Producer

from conftest import (KCAT, REPO_ROOT, audit, cli_as, first_message, kcat_args, kcat_on,
                      principal, wait_for_audit)

EXAMPLES = REPO_ROOT / "examples" / "domains"
CHARGEBACKS = "payments.chargeback_opened"
CHARGEBACK = {"chargeback_id": "cb-1", "transaction_id": "t-1", "customer_id": "c-1",
              "amount": 42.5, "currency": "EUR", "reason": "fraud",
              "opened_at": "2026-11-30T09:00:00Z"}


def examples_with(tmp_path, domain, old, new):
    """A copy of the example domains with `old` replaced by `new` in `domain`'s manifest;
    returns the directory, the manifest's path and its original text."""
    domains = tmp_path / "domains"
    shutil.copytree(EXAMPLES, domains)
    manifest = domains / domain / "domain.yaml"
    text = manifest.read_text()
    assert old in text, f"{old!r} not in {manifest}"
    manifest.write_text(text.replace(old, new))
    return domains, manifest, text


def refusal_counts(node, platform):
    """`headwater_access_refusals_total` by (outcome, action), scraped as `platform`."""
    req = urllib.request.Request(node.http_url + "/metrics")
    req.add_header("Authorization", f"Bearer {platform['token']}")
    with urllib.request.urlopen(req, timeout=30) as resp:
        text = resp.read().decode()
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
    return {(s.labels.get("outcome"), s.labels.get("action")): s.value
            for f in text_string_to_metric_families(text) if f.name == "headwater_access_refusals"
            for s in f.samples if s.name.endswith("_total")}


@pytest.fixture
def secured(make_node):
    people = {
        "platform": principal("platform"),
        "pay": principal("pay-svc", "team:payments"),
        "fin": principal("fin-svc", "team:finance-eng"),
        "growth": principal("growth-svc", "team:growth"),
    }
    config = '[auth]\nplatform = ["user:platform"]\n\n' + "\n".join(
        p["config"] for p in people.values())
    node = make_node(config=config)
    assert "NO AUTHENTICATION" not in node.log_text()
    assert "authentication on" in node.log_text()
    r = cli_as(node, people["platform"], "apply", str(EXAMPLES))
    assert r.returncode == 0, r.stdout + r.stderr
    return node, people


def sasl(who, mechanism):
    return {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": mechanism,
            "sasl.username": who["name"], "sasl.password": who["password"]}


@pytest.mark.skipif(KCAT is None, reason="kcat not installed (scripts/test installs it)")
def test_kcat_signs_in_with_each_mechanism_and_is_refused_what_it_does_not_own(secured):
    node, people = secured
    pay, fin = people["pay"], people["fin"]

    # No credentials: the node closes the connection and says why in its log.
    r = kcat_on(node, "-L")
    assert r.returncode != 0
    assert "requires SASL" in node.log_text()

    # Wrong password, on every mechanism.
    for mechanism in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]:
        r = kcat_on(node, *kcat_args(fin, mechanism, password="not-the-password"), "-L")
        assert r.returncode != 0
        assert "Authentication failed" in r.stderr or "authentication" in r.stderr.lower(), r.stderr
        assert "unknown user or wrong password" in r.stderr, r.stderr

    # The right password on every mechanism; a listing shows only what finance may describe.
    for mechanism in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]:
        r = kcat_on(node, *kcat_args(fin, mechanism), "-L", "-J")
        assert r.returncode == 0, r.stderr
        topics = {t["topic"] for t in json.loads(r.stdout)["topics"]}
        assert "payments.transaction_settled" in topics  # finance reads it
        assert "finance.ledger_entry" in topics  # finance owns it
        assert CHARGEBACKS not in topics  # readers: [ml]
        assert not any(t.startswith("_") for t in topics)

    # The owner produces; finance may not produce to payments' stream nor read chargebacks.
    r = kcat_on(node, *kcat_args(pay, "SCRAM-SHA-256"), "-P", "-t", CHARGEBACKS,
             input_text=json.dumps(CHARGEBACK) + "\n")
    assert r.returncode == 0, r.stderr
    r = kcat_on(node, *kcat_args(fin, "PLAIN"), "-P", "-t", "payments.transaction_settled",
             input_text='{"x": 1}\n')
    assert "Topic authorization failed" in r.stderr, r.stderr
    r = kcat_on(node, *kcat_args(fin, "SCRAM-SHA-512"), "-C", "-t", CHARGEBACKS, "-e")
    assert r.returncode != 0
    assert "Topic authorization failed" in r.stderr, r.stderr
    r = kcat_on(node, *kcat_args(pay, "PLAIN"), "-C", "-t", CHARGEBACKS, "-e", "-c", "1")
    assert r.returncode == 0 and json.loads(r.stdout)["chargeback_id"] == "cb-1", r.stderr

    # Every refusal is on the record, naming who, what and the missing grant. Failed sign-ins
    # come from strangers, so they are sampled: all from this address within a minute are
    # audited as a few entries carrying counts, and every one is counted per mechanism.
    platform = people["platform"]
    failed = wait_for_audit(node, platform, lambda e: e["action"] == "auth.failed")
    assert failed and all(e["principal"] == "user:fin-svc" for e in failed), failed
    assert all(e["after"]["count"] >= 1 for e in failed), failed
    counts = refusal_counts(node, platform)
    for mechanism in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
        assert counts.get(("auth.failed", mechanism), 0) >= 1, counts
    refused = wait_for_audit(node, platform, lambda e: e["action"] == "access.refused"
                             and e["target"] == CHARGEBACKS and e["principal"] == "user:fin-svc")
    assert refused, "the refused read of chargebacks is not audited"
    assert "add your domain to `readers` of stream chargeback_opened" in refused[0]["after"]["why"]
    produce = wait_for_audit(node, platform, lambda e: e["action"] == "access.refused"
                             and e["after"]["action"] == "produce")
    assert "only owners of payments (team:payments)" in produce[0]["after"]["why"]
    r = cli_as(node, platform, "audit", "verify")
    assert r.returncode == 0, r.stdout + r.stderr


def test_confluent_kafka_reader_is_refused_until_the_owner_adds_it(secured, tmp_path):
    node, people = secured
    pay, fin = people["pay"], people["fin"]
    producer = Producer({"bootstrap.servers": node.bootstrap, **sasl(pay, "SCRAM-SHA-256")})
    producer.produce(CHARGEBACKS, json.dumps(CHARGEBACK).encode())
    assert producer.flush(15) == 0

    def consume(group):
        consumer = Consumer({"bootstrap.servers": node.bootstrap, **sasl(fin, "SCRAM-SHA-512"),
                             "group.id": group, "auto.offset.reset": "earliest"})
        consumer.subscribe([CHARGEBACKS])
        return first_message(consumer, decode=json.loads)

    # A reader without the grant.
    got = consume("finance.chargebacks")
    assert isinstance(got, KafkaError) and got.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, got

    # The payments owners add finance to the stream's readers, through their own token.
    domains, _, _ = examples_with(tmp_path, "payments", "    readers: [ml]\n",
                                  "    readers: [ml, finance]\n")
    # Finance cannot make that change itself.
    r = cli_as(node, fin, "apply", str(domains))
    assert r.returncode == 1
    assert "may not change payments: only its owners (team:payments) may" in r.stdout, r.stdout
    r = cli_as(node, pay, "apply", str(domains))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "payments: applied" in r.stdout
    grant = [e for e in audit(node, people["platform"])
             if e["action"] == "grant" and e["target"] == CHARGEBACKS]
    assert grant[-1]["principal"] == "user:pay-svc"
    assert grant[-1]["before"]["readers"] == ["ml"]
    assert grant[-1]["after"]["readers"] == ["ml", "finance"]

    assert consume("finance.chargebacks") == CHARGEBACK

    # A group belongs to the domain it is named for.
    got = consume("chargebacks")
    assert isinstance(got, KafkaError) and got.code() == KafkaError.GROUP_AUTHORIZATION_FAILED, got
    refused = wait_for_audit(node, people["platform"], lambda e: e["action"] == "access.refused"
                             and e["target"] == "chargebacks")
    assert "name it 'finance.chargebacks'" in refused[0]["after"]["why"]


def test_kafka_python_signs_in_with_scram_and_plain(secured):
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.errors import KafkaError as PyKafkaError
    node, people = secured
    pay = people["pay"]
    for mechanism in ["SCRAM-SHA-512", "PLAIN"]:
        producer = KafkaProducer(bootstrap_servers=node.bootstrap,
                                 security_protocol="SASL_PLAINTEXT", sasl_mechanism=mechanism,
                                 sasl_plain_username=pay["name"],
                                 sasl_plain_password=pay["password"])
        producer.send(CHARGEBACKS, json.dumps(CHARGEBACK).encode()).get(timeout=20)
        producer.close()
    consumer = KafkaConsumer(CHARGEBACKS, bootstrap_servers=node.bootstrap,
                             security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-256",
                             sasl_plain_username=pay["name"], sasl_plain_password=pay["password"],
                             auto_offset_reset="earliest", consumer_timeout_ms=10000)
    got = [json.loads(m.value) for m in consumer]
    consumer.close()
    assert len(got) == 2 and got[0] == CHARGEBACK
    with pytest.raises(PyKafkaError):
        KafkaProducer(bootstrap_servers=node.bootstrap, security_protocol="SASL_PLAINTEXT",
                      sasl_mechanism="SCRAM-SHA-256", sasl_plain_username=pay["name"],
                      sasl_plain_password="wrong", request_timeout_ms=5000,
                      max_block_ms=5000).send(CHARGEBACKS, b"{}").get(timeout=10)


def http(node, method, path, token=None, body=None):
    req = urllib.request.Request(node.http_url + path, method=method,
                                 data=body.encode() if body is not None else None)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def test_http_bearer_tokens_and_403s_name_the_missing_grant(secured):
    node, people = secured
    pay, fin, platform = people["pay"], people["fin"], people["platform"]
    status, body = http(node, "GET", "/v1/catalog")
    assert status == 401 and "requires a bearer token" in body["error"]
    status, body = http(node, "GET", "/v1/catalog", token="hw_not-a-token")
    assert status == 401 and "not one this node issued" in body["error"]
    assert http(node, "GET", "/v1/catalog", token=fin["token"])[0] == 200

    event = json.dumps(CHARGEBACK)
    status, body = http(node, "POST", "/v1/streams/payments/chargeback_opened/events",
                        token=fin["token"], body=event)
    assert status == 403, body
    assert "may not produce to payments.chargeback_opened: only owners of payments" in body["error"]
    status, body = http(node, "POST", "/v1/streams/payments/chargeback_opened/events",
                        token=pay["token"], body=event)
    assert status == 200 and body["published"] == 1, body
    # A percent-escaped path is judged as the name it decodes to, as the router routes it.
    status, body = http(node, "POST", "/v1/streams/payments/chargeback%5Fopened/events",
                        token=pay["token"], body=event)
    assert status == 200 and body["published"] == 1, body

    # The CLI signs in with HEADWATER_TOKEN; SQL is checked against every stream it reads.
    r = cli_as(node, fin, "sql", f"SELECT count(*) AS n FROM {CHARGEBACKS}")
    assert r.returncode != 0
    assert "its readers are [ml]" in r.stderr, r.stderr
    r = cli_as(node, pay, "sql", f"SELECT count(*) AS n FROM {CHARGEBACKS}", "--output", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[0])["n"] == 2
    r = cli_as(node, None, "catalog")
    assert r.returncode != 0 and "requires a bearer token" in r.stderr, r.stderr

    # Views belong to their domain: ml's features are not finance's to look up.
    status, body = http(node, "GET", "/v1/views/ml/customer_spend/c-1", token=fin["token"])
    assert status == 403 and "only its owners (team:ml-platform)" in body["error"], body
    status, _ = http(node, "GET", "/v1/views/ml/customer_spend/c-1", token=platform["token"])
    assert status in (200, 404)

    # The schema registry: a domain's subjects change only through its owners.
    schema = json.dumps({"schema": json.dumps({"type": "object"}), "schemaType": "JSON"})
    status, body = http(node, "POST", f"/subjects/{CHARGEBACKS}-value/versions",
                        token=fin["token"], body=schema)
    assert status == 403 and "may not change payments" in body["error"], body
    status, body = http(node, "PUT", "/config", token=pay["token"],
                        body=json.dumps({"compatibility": "NONE"}))
    assert status == 403 and "only a platform principal" in body["error"], body

    refused = wait_for_audit(node, platform, lambda e: e["action"] == "access.refused"
                             and e["principal"] == "user:fin-svc")
    assert {e["after"]["action"] for e in refused} >= {"produce", "consume", "read view",
                                                       "administer"}
    applied = [e for e in audit(node, platform) if e["action"] == "domain.apply"]
    assert applied and all(e["principal"] == "user:platform" for e in applied)

    # Counted for Prometheus too (scraping needs a token like any other route).
    counts = refusal_counts(node, platform)
    assert counts.get(("access.refused", "produce"), 0) >= 1, counts
    assert counts.get(("auth.failed", "bearer"), 0) >= 1, counts


def test_pii_without_grant_and_central_domain_changes_are_refused_at_plan(secured, tmp_path):
    node, people = secured
    growth, fin, platform = people["growth"], people["fin"], people["platform"]
    # Marketing would hand payments' customer_id (pii) to finance, which payments has not
    # granted pii: refused at plan time, before anything changes.
    domains, marketing, text = examples_with(tmp_path, "marketing", "    readers: [ml]\n",
                                             "    readers: [ml, finance]\n")
    r = cli_as(node, growth, "plan", str(domains))
    assert r.returncode == 1
    assert ("pipeline marketing.high_value_purchases exposes "
            "payments.transaction_settled.customer_id (pii)") in r.stdout, r.stdout
    assert "to domain finance" in r.stdout
    assert "must add finance to `grants: { pii: [...] }` of stream transaction_settled" in r.stdout
    r = cli_as(node, growth, "apply", str(domains))
    assert r.returncode == 1 and "marketing: refused, nothing changed" in r.stdout, r.stdout
    refused = wait_for_audit(node, platform, lambda e: e["action"] == "apply.refused"
                             and e["domain"] == "marketing")
    assert refused and refused[0]["principal"] == "user:growth-svc"
    marketing.write_text(text)

    # Finance is centrally governed: its owners may not change it, the platform may.
    finance = domains / "finance" / "domain.yaml"
    finance.write_text(finance.read_text().replace("freshness: 1d", "freshness: 2d"))
    r = cli_as(node, fin, "apply", str(domains))
    assert r.returncode == 1
    assert ("may not change finance: the domain is centrally governed, so its changes need a "
            "platform principal (user:platform)") in r.stdout, r.stdout
    r = cli_as(node, platform, "apply", str(domains))
    assert r.returncode == 0 and "finance: applied" in r.stdout, r.stdout
    entries = audit(node, platform)
    assert any(e["action"] == "access.refused" and e["target"] == "finance"
               and e["principal"] == "user:fin-svc" for e in entries)
    assert entries[-1]["principal"] == "user:platform"


def demo_secrets():
    """The demo principals' passwords and tokens, as docs/governance.md lists them for
    examples/auth/node.toml: the walkthrough below fails if the two drift apart."""
    import re
    text = (REPO_ROOT / "docs" / "governance.md").read_text()
    rows = re.findall(r"^\| `([a-z-]+)` \| [^|]+ \| `([^`]+)` \| `([^`]+)` \|$", text, re.M)
    assert len(rows) == 5, rows
    return {name: {"name": name, "password": pw, "token": tok} for name, pw, tok in rows}


def test_the_documented_example_config_walkthrough(make_node, tmp_path):
    """What a newcomer does with examples/auth/node.toml: finance is refused a stream it does
    not read, allowed once payments' manifest adds it to readers; a field followed from
    payments into ml's view; the audit trail verifies."""
    people = demo_secrets()
    node = make_node(config=(REPO_ROOT / "examples" / "auth" / "node.toml").read_text())
    platform, pay, fin = people["platform"], people["payments-svc"], people["finance-svc"]
    r = cli_as(node, platform, "apply", str(EXAMPLES))
    assert r.returncode == 0, r.stdout + r.stderr

    producer = Producer({"bootstrap.servers": node.bootstrap, **sasl(pay, "SCRAM-SHA-512")})
    producer.produce(CHARGEBACKS, json.dumps(CHARGEBACK).encode())
    assert producer.flush(15) == 0

    def finance_reads():
        consumer = Consumer({"bootstrap.servers": node.bootstrap, **sasl(fin, "PLAIN"),
                             "group.id": "finance.walkthrough", "auto.offset.reset": "earliest"})
        consumer.subscribe([CHARGEBACKS])
        return first_message(consumer, decode=json.loads)

    got = finance_reads()
    assert isinstance(got, KafkaError) and got.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED

    domains, _, _ = examples_with(tmp_path, "payments", "    readers: [ml]\n",
                                  "    readers: [ml, finance]\n")
    r = cli_as(node, pay, "apply", str(domains))
    assert r.returncode == 0 and "payments.chargeback_opened readers: ml, finance" in r.stdout, \
        r.stdout + r.stderr
    assert finance_reads() == CHARGEBACK

    r = cli_as(node, fin, "lineage", "payments.transaction_settled.amount")
    assert r.returncode == 0, r.stderr
    assert "ml.customer_spend.spend_30d" in r.stdout
    r = cli_as(node, fin, "audit", "verify")
    assert r.returncode == 0, r.stdout + r.stderr
