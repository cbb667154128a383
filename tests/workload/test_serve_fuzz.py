"""Schemathesis against the server's own OpenAPI: JSON bodies on every route, and OIP v2 binary bodies
(JSON header + tensor bytes). No case gets a 5xx; every 4xx says what was wrong in {"error": ...}."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from kubeforge_workloads.serve.protocol import v2
from tests.workload.serve_fixtures import ServerProcess

pytestmark = pytest.mark.workload
pytest_plugins = ["tests.workload.serve_fixtures"]

JSON_CASES, BINARY_CASES = 250, 100
BINARY = "application/octet-stream"

# Binary OIP v2 bodies shaped like real ones, with the mistakes clients make: wrong sizes, shapes,
# datatypes, non-UTF-8 elements, truncated length prefixes, odd parameter types.
_input = st.fixed_dictionaries(
    {"name": st.sampled_from(["text", "input_ids", ""]),
     "shape": st.lists(st.integers(-2, 6), max_size=3),
     "datatype": st.sampled_from(["BYTES", "FP32", "INT64"])},
    optional={"parameters": st.fixed_dictionaries(
        {"binary_data_size": st.one_of(st.integers(-4, 80), st.text(max_size=3), st.none(), st.floats())})},
)
_header = st.fixed_dictionaries(
    {"inputs": st.lists(_input, max_size=2)},
    optional={"id": st.text(max_size=8),
              "outputs": st.lists(st.fixed_dictionaries(
                  {"name": st.sampled_from(v2.OUTPUTS + ("nope",))},
                  optional={"parameters": st.fixed_dictionaries({"binary_data": st.booleans()})}), max_size=3),
              "parameters": st.fixed_dictionaries({"binary_data_output": st.booleans()})},
)
_tensor = st.one_of(st.lists(st.text(max_size=12).map(str.encode) | st.binary(max_size=12), max_size=4)
                    .map(v2.encode_bytes_tensor), st.binary(max_size=40))
_mangled = st.builds(lambda h, t: json.dumps(h).encode() + t, _header, _tensor)


def _binary_request(texts: list[str], binary_output: bool) -> bytes:
    """A well-formed binary request, as tritonclient sends it."""
    tensor = v2.encode_bytes_tensor([t.encode() for t in texts])
    header = {"inputs": [{"name": "text", "shape": [len(texts)], "datatype": "BYTES",
                          "parameters": {"binary_data_size": len(tensor)}}],
              "parameters": {"binary_data_output": binary_output}}
    return json.dumps(header).encode() + tensor


_well_formed = st.builds(_binary_request, st.lists(st.text(max_size=30), min_size=1, max_size=4), st.booleans())
schemathesis.openapi.media_type(BINARY, st.one_of(_well_formed, _mangled))


@pytest.fixture(scope="module")
def fuzzed_server(tiny_model_dir, tmp_path_factory):
    server = ServerProcess(tiny_model_dir, tmp_path_factory.mktemp("fuzzed") / "server.log",
                           ["--max-texts", "8", "--max-queue", "64"]).start()
    yield server.wait_ready()
    server.terminate()


def _json_header_length(body: bytes) -> int | None:
    try:
        return json.JSONDecoder().raw_decode(body.decode("latin-1"))[1]
    except ValueError:
        return None


def _with_matching_header_length(case) -> None:
    """Without the header a binary body is just bad JSON: when the fuzzer sent none, give the matching one."""
    if case.media_type == BINARY and isinstance(case.body, bytes):
        if v2.HEADER_LENGTH not in {k.lower() for k in (case.headers or {})}:
            length = _json_header_length(case.body)
            if length is not None:
                case.headers = {**(case.headers or {}), v2.HEADER_LENGTH: str(length)}


def _fuzz(strategy, examples: int, seen: Counter) -> None:
    @given(case=strategy)
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    def check(case):
        _with_matching_header_length(case)
        response = case.call(timeout=30)
        seen[(case.media_type or "-", response.status_code // 100)] += 1
        assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"
        if response.status_code >= 400:
            error = response.json().get("error")
            assert isinstance(error, str) and len(error) > 3, response.text

    check()


def test_no_generated_request_gets_a_5xx_and_every_4xx_names_the_problem(fuzzed_server):
    api = schemathesis.openapi.from_url(fuzzed_server.url + "/openapi.json")
    seen: Counter = Counter()
    server_errors_before = fuzzed_server.metric("kubeforge_requests_total", 'code="5')  # 503s while loading

    # Every route: requests valid by the schema (for the served model's name too, so they reach the model)
    # and invalid ones (they must be refused well).
    _fuzz(st.one_of(api.as_strategy(GenerationMode.POSITIVE, path_parameters={"name": "model"}),
                    api.as_strategy(GenerationMode.POSITIVE), api.as_strategy(GenerationMode.NEGATIVE)),
          JSON_CASES, seen)
    # OIP v2 binary bodies, well-formed and mangled.
    _fuzz(api["/v2/models/{name}/infer"]["POST"].as_strategy(media_type=BINARY, path_parameters={"name": "model"}),
          BINARY_CASES, seen)

    print(f"\nschemathesis: {sum(seen.values())} cases, by (media type, status class): {dict(seen)}")
    assert seen[(BINARY, 2)] > 0, "no binary request was well-formed enough to be answered"
    assert fuzzed_server.metric("kubeforge_requests_total", 'code="5') == server_errors_before, fuzzed_server.log()
