"""OpenLineage: pipeline runs emit START, COMPLETE and FAIL run events with their datasets and
schema facets, to a file and to an HTTP endpoint, each rebuilt with the openlineage-python
client's model classes (whose validators check the run id, the event time and the facets)."""

import http.server
import json
import threading
import time

from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.generated import error_message_run, schema_dataset, sql_job
from openlineage.client.serde import Serde

from conftest import examples_with_broken_pipeline, node_cli, run_cli

SETTLED = "payments.transaction_settled"


def as_model(event):
    """The event rebuilt with the client's classes; their validators refuse a bad run id, event
    time or event type."""
    def dataset(cls, d):
        facets = {}
        if "schema" in d["facets"]:
            facets["schema"] = schema_dataset.SchemaDatasetFacet(fields=[
                schema_dataset.SchemaDatasetFacetFields(name=f["name"], type=f["type"])
                for f in d["facets"]["schema"]["fields"]])
        return cls(namespace=d["namespace"], name=d["name"], facets=facets)

    run_facets = {}
    if "errorMessage" in event["run"]["facets"]:
        e = event["run"]["facets"]["errorMessage"]
        run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=e["message"], programmingLanguage=e["programmingLanguage"])
    job_facets = {}
    if "sql" in event["job"]["facets"]:
        job_facets["sql"] = sql_job.SQLJobFacet(query=event["job"]["facets"]["sql"]["query"])
    return RunEvent(
        eventType=RunState(event["eventType"]),
        eventTime=event["eventTime"],
        run=Run(runId=event["run"]["runId"], facets=run_facets),
        job=Job(namespace=event["job"]["namespace"], name=event["job"]["name"], facets=job_facets),
        inputs=[dataset(InputDataset, d) for d in event["inputs"]],
        outputs=[dataset(OutputDataset, d) for d in event["outputs"]],
        producer=event["producer"],
    )


def check(event):
    model = Serde.to_dict(as_model(event))
    for key in ("eventType", "eventTime", "producer"):
        assert model[key] == event[key], key
    assert model["run"]["runId"] == event["run"]["runId"]
    assert event["schemaURL"].startswith("https://openlineage.io/spec/")
    for facet in [*event["run"]["facets"].values(), *event["job"]["facets"].values(),
                  *(f for d in event["inputs"] + event["outputs"] for f in d["facets"].values())]:
        assert facet["_producer"] == event["producer"]
        assert facet["_schemaURL"].startswith("https://openlineage.io/spec/facets/")


class Collector(http.server.BaseHTTPRequestHandler):
    received = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        Collector.received.append(json.loads(body))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_pipeline_runs_emit_openlineage_events(make_node, tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    events_file = tmp_path / "lineage.jsonl"
    node = make_node(config=f"""
[openlineage]
file = "{events_file}"
url = "http://127.0.0.1:{server.server_address[1]}/api/v1/lineage"
namespace = "headwater-test"
""")
    dirs = examples_with_broken_pipeline(tmp_path)
    assert run_cli("apply", str(dirs), "--url", node.http_url).returncode == 0
    txn = {"transaction_id": "t-1", "customer_id": "c-1", "merchant_id": "m-1", "amount": 12.5,
           "currency": "EUR", "settled_at": "2026-11-30T08:00:00Z"}
    assert node_cli(node, "publish", SETTLED, stdin=json.dumps(txn)).returncode == 0
    assert node_cli(node, "run", "finance.daily_settlement_totals").returncode == 0
    assert node_cli(node, "run", "finance.broken_cast").returncode == 1

    def runs_of(events, job):
        return [e for e in events if e["job"]["name"] == job]

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        lines = events_file.read_text().splitlines() if events_file.exists() else []
        events = [json.loads(x) for x in lines]
        if len(runs_of(events, "finance.broken_cast")) >= 2 and len(runs_of(Collector.received, "finance.broken_cast")) >= 2:
            break
        time.sleep(0.2)
    for e in events:
        check(e)

    daily = runs_of(events, "finance.daily_settlement_totals")
    assert [e["eventType"] for e in daily[:2]] == ["START", "COMPLETE"], daily
    start, complete = daily[:2]
    assert start["run"]["runId"] == complete["run"]["runId"]
    assert start["job"]["namespace"] == "headwater-test"
    assert "sum(amount)" in start["job"]["facets"]["sql"]["query"]
    (inp,) = start["inputs"]
    assert inp["namespace"] == f"kafka://127.0.0.1:{node.port}" and inp["name"] == SETTLED
    fields = {f["name"]: f["type"] for f in inp["facets"]["schema"]["fields"]}
    assert fields["amount"] == "number" and fields["customer_id"] == "string"
    assert start["outputs"] == [{"namespace": "headwater-test", "name": "finance.settlement_totals", "facets": {}}]

    broken = runs_of(events, "finance.broken_cast")
    assert [e["eventType"] for e in broken[:2]] == ["START", "FAIL"], broken
    assert "cast" in broken[1]["run"]["facets"]["errorMessage"]["message"].lower()

    # The same events reached the HTTP endpoint.
    got = {(e["run"]["runId"], e["eventType"]) for e in Collector.received}
    assert {(e["run"]["runId"], e["eventType"]) for e in daily[:2] + broken[:2]} <= got
    # Streaming pipelines start a run when deployed.
    assert any(e["job"]["name"] == "ml.customer_spend" and e["eventType"] == "START" for e in events)
    server.shutdown()
