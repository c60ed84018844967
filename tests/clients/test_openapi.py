"""The HTTP API against its OpenAPI document (`/v1/openapi.json`), fuzzed by schemathesis on a
node with auth on and the example domains applied: no 5xx, no crash, and no answer whose
status, content type or body contradicts the document; requests that break the document are
refused. The seed is fixed so CI is repeatable; `SCHEMATHESIS_SEED` and
`SCHEMATHESIS_EXAMPLES` run it wider by hand.

The follow route (`GET /v1/streams/{domain}/{stream}/events`) is left out: by design it never
ends, so a generated request would only time out. `test_attacks.py` covers it."""

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from conftest import REPO_ROOT, principal, require_binary

EXAMPLES = REPO_ROOT / "examples" / "domains"
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


def test_the_api_answers_as_its_document_says(make_node, tmp_path):
    platform = principal("platform")
    node = make_node(config='[auth]\nplatform = ["user:platform"]\n\n' + platform["config"])
    env = dict(os.environ, HEADWATER_TOKEN=platform["token"])
    applied = subprocess.run([str(require_binary()), "apply", str(EXAMPLES), "--url",
                              node.http_url], capture_output=True, text=True, env=env,
                             timeout=120)
    assert applied.returncode == 0, applied.stdout + applied.stderr

    served = urllib.request.Request(node.http_url + "/v1/openapi.json")
    served.add_header("Authorization", f"Bearer {platform['token']}")
    with urllib.request.urlopen(served, timeout=30) as r:
        assert json.load(r)["openapi"].startswith("3.")

    run = subprocess.run(
        [str(SCHEMATHESIS), "run", node.http_url + "/v1/openapi.json",
         "--url", node.http_url,
         "-H", f"Authorization: Bearer {platform['token']}",
         "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                     "response_schema_conformance,negative_data_rejection",
         "--exclude-operation-id", "followStream",
         "--request-timeout", "10",
         "--max-examples", os.environ.get("SCHEMATHESIS_EXAMPLES", "25"),
         "--seed", os.environ.get("SCHEMATHESIS_SEED", "20261202"),
         "--workers", "1"],
        # Its cache of crashes goes to the test's own directory, not the checkout.
        capture_output=True, text=True, timeout=900, cwd=tmp_path)
    report = run.stdout[-6000:] + run.stderr[-2000:]
    assert run.returncode == 0, report
    assert node.is_running(), "the node stopped under the fuzzer"
    assert "panicked" not in node.log_text(), node.log_text()[-4000:]
