"""The real-model path without a GPU: Inspect's `openai-api/<service>/<model>` and `vllm/<model>` providers
against a local OpenAI-compatible chat-completions server (stdlib http.server on 127.0.0.1, a free port).

The server answers from a fixed, deterministic script of tool calls (checks with the prediction fields the tool
schemas ask for, a wait, two calls in one reply) and of replies that exercise the parse paths: arguments that are
not JSON, a reply without a tool call, a call missing the required prediction fields, an unknown tool, an argument
of the wrong type. It reads the turn from the request itself (the newest tool result's call id, or the turn mark in
the last reply), so a retried request gets the same answer. Every response carries `usage`; every request is
recorded, so the tests assert on what Inspect actually sent: tool schemas, messages, the API key header.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

pytest.importorskip("openai", reason="Inspect's openai-api/ and vllm/ providers need the openai package (dev extra)")

from inspect_ai import eval
from inspect_ai.log import EvalLog, EvalSample, read_eval_log
from inspect_ai.util import Store
from sweep_helpers import TINY, texts_below, vendomini

from vendomini_eval.analysis.report import analyze
from vendomini_eval.budget import LEDGER_FILE, Price
from vendomini_eval.experiments import shipped_configs_dir
from vendomini_eval.policies.base import FACTS_MARKER
from vendomini_eval.solvers import EpisodeRecord
from vendomini_eval.solvers.agent import NUDGE
from vendomini_eval.sweep.budget import recorded_spend
from vendomini_eval.tasks.phase1 import phase1

MAX_STEPS = 12
CONTEXT_LENGTH = 32_768  # what the fake vLLM server reports as max_model_len
TURN_MARK = re.compile(r"\[turn (\d+)\]")
CALL_ID = re.compile(r"^call_(\d+)_(\d+)$")
BAD_JSON = '{"expected_success": tru'  # cut off mid-value: not JSON

# One entry per reply: a list of (tool, arguments) calls; arguments "predict" means the call's arguments are the
# prediction fields its schema offers (filled from the facts line); a str is sent verbatim as the arguments text.
# None is a reply without a tool call.
SCRIPT: list[list[tuple[str, Any]] | None] = [
    [("check_catalogue", "predict")],
    [("check_budget", "predict")],
    [("check_inventory", "predict")],
    [("wait", "predict")],
    [("check_orders", BAD_JSON)],
    None,
    [("check_budget", {})],  # valid JSON, required prediction fields missing
    [("wait", "predict"), ("check_orders", "predict")],
    [("launch_rocket", {"expected_success": True})],
    [("order", {"supplier_id": "S1", "sku_id": "SKU-01", "quantity": "ten", "expected_success": True})],
]
FILLER = [("wait", "predict")]  # after the script, until max_steps

# The episode's trace (tool, valid, error_kind) for that script, one row per step.
EXPECTED_TRACE = [
    ("check_catalogue", True, None),
    ("check_budget", True, None),
    ("check_inventory", True, None),
    ("wait", True, None),
    ("check_orders", False, "malformed"),  # bad JSON: the Episode judges the unparseable arguments
    ("<no_tool>", False, "no_tool_call"),
    ("check_budget", False, "bad_prediction"),
    ("wait", True, None),
    ("check_orders", True, None),
    ("<unknown>", False, "unknown_tool"),
    ("order", False, "malformed"),
    ("wait", True, None),
]
assert len(EXPECTED_TRACE) == MAX_STEPS


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def _facts(messages: list[dict[str, Any]]) -> dict[str, Any]:
    for message in messages:
        if message.get("role") in ("system", "developer"):
            for line in _text(message.get("content")).splitlines():
                if line.startswith(FACTS_MARKER):
                    return json.loads(line[len(FACTS_MARKER) :])
    return {}


def _turn(messages: list[dict[str, Any]]) -> int:
    """The reply's index in the script, from the request alone (a retried request gets the same reply)."""
    last = messages[-1] if messages else {}
    if last.get("role") == "tool":
        match = CALL_ID.match(str(last.get("tool_call_id", "")))
        if match:
            return int(match.group(1)) + 1
    for message in reversed(messages):
        if message.get("role") == "assistant":
            match = TURN_MARK.search(_text(message.get("content")))
            if match:
                return int(match.group(1)) + 1
            for call in message.get("tool_calls") or []:
                id_match = CALL_ID.match(str(call.get("id", "")))
                if id_match:
                    return int(id_match.group(1)) + 1
    return 0


def _prediction(tool: str, tools: list[dict[str, Any]], facts: dict[str, Any]) -> dict[str, Any]:
    """The prediction fields the tool's schema offers, filled with honest guesses."""
    schema = next((t["function"]["parameters"] for t in tools if t["function"]["name"] == tool), {})
    guesses = {
        "expected_success": True,
        "confidence": 0.9,
        "expected_cash": facts.get("start_cash", 0.0),
        "expected_units_in_stock": 0,
    }
    return {name: guesses[name] for name in schema.get("properties", {}) if name in guesses}


@dataclass
class FakeServer:
    """What the fixture serves: its base URL, the key it accepts, and every request it got."""

    api_key: str
    model_id: str = "fake-model"
    port: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    usage: list[dict[str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    previous: list[Any] = field(default_factory=list)
    """The last request's messages: the prefix a prompt cache would serve from."""

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def chat_requests(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests if r["path"] == "/v1/chat/completions"]

    def reply(self, body: dict[str, Any]) -> dict[str, Any]:
        messages, tools = body["messages"], body.get("tools") or []
        turn = _turn(messages)
        calls = SCRIPT[turn] if turn < len(SCRIPT) else FILLER
        if calls is None:
            message: dict[str, Any] = {
                "role": "assistant",
                "content": f"Let me think about the business. [turn {turn}]",
            }
            finish = "stop"
        else:
            facts = _facts(messages)
            tool_calls = []
            for j, (tool, arguments) in enumerate(calls):
                if arguments == "predict":
                    arguments = _prediction(tool, tools, facts)
                text = arguments if isinstance(arguments, str) else json.dumps(arguments)
                tool_calls.append(
                    {"id": f"call_{turn}_{j}", "type": "function", "function": {"name": tool, "arguments": text}}
                )
            message = {"role": "assistant", "content": None, "tool_calls": tool_calls}
            finish = "tool_calls"
        prompt = max(1, len(json.dumps(messages)) // 4)
        completion = max(1, len(json.dumps(message)) // 4)
        usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                                 "total_tokens": prompt + completion}  # fmt: skip
        with self.lock:
            # A prompt cache: the messages this request repeats from the previous one, as cached input tokens.
            shared = 0
            while shared < min(len(messages), len(self.previous)) and messages[shared] == self.previous[shared]:
                shared += 1
            cached = min(prompt, len(json.dumps(messages[:shared])) // 4) if shared else 0
            usage["prompt_tokens_details"] = {"cached_tokens": cached}
            self.previous = messages
            self.usage.append(usage)
        return {
            "id": f"chatcmpl-{turn}",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": body.get("model", self.model_id),
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": usage,
        }


def _handler(server: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _record(self, body: Any) -> bool:
            authorization = self.headers.get("Authorization", "")
            with server.lock:
                server.requests.append(
                    {"method": self.command, "path": self.path, "authorization": authorization, "body": body}
                )
            if authorization != f"Bearer {server.api_key}":
                self._send(401, {"error": {"message": "invalid api key", "type": "invalid_request_error"}})
                return False
            return True

        def do_GET(self) -> None:
            path = self.path.rstrip("/")
            if path == "/health":
                self._send(200, {})
                return
            if not self._record(None):
                return
            if path == "/v1/models":
                entry = {"id": server.model_id, "object": "model", "created": 0, "owned_by": "vendomini-test"}
                self._send(200, {"object": "list", "data": [{**entry, "max_model_len": CONTEXT_LENGTH}]})
            else:
                self._send(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            if not self._record(body):
                return
            if self.path == "/v1/chat/completions":
                if body.get("stream"):
                    self._send(400, {"error": {"message": "this test server does not stream"}})
                    return
                self._send(200, server.reply(body))
            elif self.path == "/tokenize":
                self._send(200, {"tokens": list(range(max(1, len(str(body.get("prompt", ""))) // 4)))})
            else:
                self._send(404, {"error": {"message": f"no route {self.path}"}})

    return Handler


@pytest.fixture
def fake_server(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[FakeServer]:
    """An OpenAI-compatible chat-completions server on 127.0.0.1 in a background thread."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    state = FakeServer(api_key=f"sk-vendomini-test-{request.node.name.encode().hex()[:16]}-do-not-log")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _configure(provider: str, server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the provider at the fake server through its environment variables; the model name to use."""
    # A model name of its own per test: Inspect memoizes models by name (not by the base URL read from the
    # environment) and keeps one vLLM server entry per base model for the process, so a shared name would send
    # this test's requests to an earlier test's (closed) server.
    if provider == "openai-api":
        server.model_id = f"fake-model-{server.port}"
        monkeypatch.setenv("LOCAL_BASE_URL", server.base_url)
        monkeypatch.setenv("LOCAL_API_KEY", server.api_key)
        return f"openai-api/local/{server.model_id}"
    server.model_id = f"fake-vllm-{server.port}"
    monkeypatch.setenv("VLLM_BASE_URL", server.base_url)
    monkeypatch.setenv("VLLM_API_KEY", server.api_key)
    return f"vllm/{server.model_id}"


def _run(model: str, tmp_path: Path) -> EvalLog:
    task = phase1(max_steps=MAX_STEPS, replications=1, p_shock=0.0)
    [log] = eval(task, model=model, log_dir=str(tmp_path), display="none", max_retries=2)
    return log


def _only_sample(log: EvalLog) -> EvalSample:
    assert log.status == "success", log.error
    assert log.samples is not None and len(log.samples) == 1
    [sample] = log.samples
    assert sample.error is None
    return sample


def _cleanup_vllm(model: str) -> None:
    if model.startswith("vllm/"):
        from inspect_ai.model._providers._vllm_lora import _vllm_servers

        _vllm_servers.pop(model.removeprefix("vllm/"), None)


PROVIDERS = ["openai-api", "vllm"]


def _run_through(
    provider: str, fake_server: FakeServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> tuple[str, EvalLog]:
    """(model name, log) of phase 1 through the fake server; the provider's process-wide state is cleared after."""
    model = _configure(provider, fake_server, monkeypatch)
    try:
        return model, _run(model, tmp_path)
    finally:
        _cleanup_vllm(model)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_phase1_through_an_openai_compatible_server(
    provider: str, fake_server: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: list[Any]
) -> None:
    model, log = _run_through(provider, fake_server, monkeypatch, tmp_path)
    log = read_eval_log(log.location, resolve_attachments=True)
    sample = _only_sample(log)

    # The episode took the scripted steps; the parse failures became invalid steps, not sample errors.
    record = EpisodeRecord(store=Store(sample.store))
    assert record.outcome == "censored", record.limit
    columns = record.trace["columns"]
    trace = list(zip(columns["tool"], columns["valid"], columns["error_kind"], strict=True))
    assert trace == EXPECTED_TRACE
    assert record.summary is not None

    # What Inspect sent: the key, plain (non-streamed) requests, the phase's tools with the prediction parameters.
    requests = fake_server.chat_requests()
    assert len(requests) == MAX_STEPS - 1  # one reply made two calls
    assert all(r["authorization"] == f"Bearer {fake_server.api_key}" for r in fake_server.requests)
    assert not any(body.get("stream") for body in requests)
    assert all(body["model"] == fake_server.model_id for body in requests)
    tools = {t["function"]["name"]: t["function"] for t in requests[0]["tools"]}
    assert {"check_catalogue", "check_budget", "check_inventory", "check_orders", "order", "ship", "wait"} <= set(tools)
    for name, function in tools.items():
        parameters = function["parameters"]
        assert parameters["type"] == "object"
        assert parameters["properties"]["expected_success"]["type"] == "boolean", name
        assert "expected_success" in parameters["required"], name  # phase1 default: prediction_mode required
        assert function["description"], name
    assert "expected_cash" in tools["check_budget"]["parameters"]["required"]
    assert tools["order"]["parameters"]["properties"]["quantity"]["type"] == "integer"
    assert {"supplier_id", "sku_id", "quantity"} <= set(tools["order"]["parameters"]["required"])

    # The messages: system prompt with the facts line first; rejected calls answered with the observation JSON.
    first = requests[0]["messages"]
    assert first[0]["role"] == "system" and FACTS_MARKER in _text(first[0]["content"])
    assert first[1]["role"] == "user"
    after_bad_json = requests[5]["messages"]  # the request that follows the reply with broken arguments
    answer = after_bad_json[-1]
    assert answer["role"] == "tool" and answer["tool_call_id"] == "call_4_0"
    text = _text(answer["content"])
    assert '"ok":false' in text and '"error":"malformed"' in text
    assert "not valid JSON" in text or "Expecting value" in text  # the model learns its JSON was broken
    after_no_call = requests[6]["messages"]
    assert after_no_call[-1]["role"] == "user" and _text(after_no_call[-1]["content"]).startswith(NUDGE)
    after_two_calls = requests[8]["messages"]
    assert [m.get("tool_call_id") for m in after_two_calls[-2:]] == ["call_7_0", "call_7_1"]

    # Usage: what the server reported is what the log counts.
    usage = log.stats.model_usage[model]
    cached = sum(u["prompt_tokens_details"]["cached_tokens"] for u in fake_server.usage)
    assert cached > 0  # the window extends the previous request: its prefix is served from the cache
    assert usage.input_tokens + usage.input_tokens_cache_read == sum(u["prompt_tokens"] for u in fake_server.usage)
    assert usage.input_tokens_cache_read == cached
    assert usage.output_tokens == sum(u["completion_tokens"] for u in fake_server.usage)

    # The analysis' run table counts what the server reported; no price is known for it, so no cost (never 0).
    runs = analyze(tmp_path, bootstrap_replicates=0).runs
    assert len(runs) == 1
    run = runs.iloc[0]
    assert run["input_tokens"] + run["cache_read_tokens"] == sum(u["prompt_tokens"] for u in fake_server.usage)
    assert run["cache_read_tokens"] == cached
    assert run["output_tokens"] == sum(u["completion_tokens"] for u in fake_server.usage)
    assert pd.isna(run["cost_usd"])

    if provider == "vllm":  # the provider asked the running server for its context window; it started none
        assert any(r["path"] == "/v1/models" for r in fake_server.requests)


def _log_texts(path: Path) -> Iterator[tuple[str, bytes]]:
    """The log file's bytes, and (for a .eval zip) every member decompressed."""
    data = path.read_bytes()
    yield path.name, data
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                yield f"{path.name}:{name}", archive.read(name)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_api_key_is_never_written_to_the_log(
    provider: str, fake_server: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: list[Any]
) -> None:
    _, log = _run_through(provider, fake_server, monkeypatch, tmp_path)
    _only_sample(read_eval_log(log.location))
    # the key was in use (the server refuses any other), so it was there to leak
    assert fake_server.chat_requests()
    assert all(r["authorization"] == f"Bearer {fake_server.api_key}" for r in fake_server.requests)

    key = fake_server.api_key.encode()
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".eval" for p in files)
    texts = [(name, data) for path in files for name, data in _log_texts(path)]
    # positive control: the search sees the log's content (the model name is written in it)
    assert any(fake_server.model_id.encode() in data for _, data in texts)
    for name, data in texts:
        assert key not in data, f"the API key is written in {name}"
    dumped = read_eval_log(log.location, resolve_attachments=True).model_dump_json()
    assert fake_server.api_key not in dumped


def serve(argv: list[str] | None = None) -> None:
    """The fixture server as a process, called like `vllm serve MODEL --host H --port P ...` (other options are
    ignored), with the key in VLLM_API_KEY as vLLM takes it. On SIGTERM it writes --report (JSON: its pid, the
    key it accepted, every request) and exits; the SLURM array task tests launch it in place of vLLM."""
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--report", required=True)
    args, _ = parser.parse_known_args(argv)
    state = FakeServer(api_key=os.environ["VLLM_API_KEY"], model_id=args.model, port=args.port)
    httpd = ThreadingHTTPServer((args.host, args.port), _handler(state))
    httpd.daemon_threads = True

    def stop(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    try:
        httpd.serve_forever(poll_interval=0.05)
    finally:
        httpd.server_close()
        with state.lock:
            report = {"pid": os.getpid(), "api_key": state.api_key, "requests": state.requests}
        Path(args.report).write_text(json.dumps(report), encoding="utf-8")


if __name__ == "__main__":
    serve()


def test_a_sweep_through_the_server_is_priced_and_counted_in_the_run_table(
    fake_server: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`vendomini run --prices`: Inspect prices each call with the file's prices, and the run table's cost and
    calls are the sums of what the server reported; the same sweep without prices has no cost (never 0)."""
    model = _configure("openai-api", fake_server, monkeypatch)
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY.format(base=shipped_configs_dir() / "base.yaml"), encoding="utf-8")
    prices = tmp_path / "prices.yaml"
    prices.write_text(f"{model}: {{input: 3, output: 15, input_cache_read: 0.3}}\n", encoding="utf-8")
    options = ("--model", model, "--limit-conditions", "1", "--max-steps", MAX_STEPS, "--max-connections", "1")
    priced = vendomini("run", config, *options, "--prices", prices, "--log-dir", tmp_path / "priced")
    assert priced.returncode == 0, priced.stdout + priced.stderr
    usage = list(fake_server.usage)
    fake_server.usage.clear()
    unpriced = vendomini("run", config, *options, "--log-dir", tmp_path / "unpriced")
    assert unpriced.returncode == 0, unpriced.stdout + unpriced.stderr

    run = analyze(tmp_path / "priced", bootstrap_replicates=0).runs.iloc[0]
    prompt = sum(u["prompt_tokens"] for u in usage)
    cached = sum(u["prompt_tokens_details"]["cached_tokens"] for u in usage)
    completion = sum(u["completion_tokens"] for u in usage)
    assert (run["input_tokens"], run["cache_read_tokens"], run["output_tokens"]) == (
        prompt - cached,
        cached,
        completion,
    )
    assert run["cost_usd"] == pytest.approx(((prompt - cached) * 3 + cached * 0.3 + completion * 15) / 1e6)
    assert run["calls"] == len(usage) == MAX_STEPS - 1  # one reply made two calls
    assert run["model_time"] > 0
    assert f"cost ${run['cost_usd']:,.2f}" in priced.stdout.strip().splitlines()[-1]
    bare = analyze(tmp_path / "unpriced", bootstrap_replicates=0).runs.iloc[0]
    assert pd.isna(bare["cost_usd"]) and bare["calls"] == MAX_STEPS - 1
    assert "cost unknown" in unpriced.stdout.strip().splitlines()[-1]


def _projected(stdout: str, model: str) -> list[str]:
    """The projection row of `model` in `vendomini plan` output, split into its columns."""
    [row] = [line.split() for line in stdout.splitlines() if line.startswith(model + " ")]
    return row


def test_plan_projects_a_sweep_from_a_pilot_within_ten_percent(
    fake_server: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pilot (one replication) through the server, then the grid with three replications (other seeds):
    `vendomini plan --from-logs PILOT` projects the second run's tokens within 10%."""
    model = _configure("openai-api", fake_server, monkeypatch)
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY.format(base=shipped_configs_dir() / "base.yaml"), encoding="utf-8")
    prices = tmp_path / "prices.yaml"
    prices.write_text(f"{model}: {{input: 3, output: 15, input_cache_read: 0.3}}\n", encoding="utf-8")
    grid = ("--limit-conditions", "2", "--max-steps", "20")
    pilot = vendomini("run", config, "--model", model, *grid, "--log-dir", tmp_path / "pilot", "--max-calls", 10**6)
    assert pilot.returncode == 0, pilot.stdout + pilot.stderr
    assert (tmp_path / "pilot" / LEDGER_FILE).is_file()
    full = vendomini("run", config, "--model", model, *grid, "--replications", "3", "--log-dir", tmp_path / "full")
    assert full.returncode == 0, full.stdout + full.stderr

    planned = vendomini("plan", config, *grid, "--replications", "3", "--from-logs", tmp_path / "pilot",
                        "--prices", prices, timeout=300)  # fmt: skip
    assert planned.returncode == 0, planned.stderr
    row = _projected(planned.stdout, model)
    assert row[1:4] == ["pilot", "6", "120"]  # method, runs, steps
    calls, input_tokens, cached, output, total = (float(v.replace(",", "")) for v in row[4:9])
    measured = recorded_spend(tmp_path / "full")
    print(f"projected {total:,.0f} tokens and {calls:,.0f} calls; measured {measured.tokens:,} and {measured.calls:,}")
    assert abs(total - measured.tokens) <= 0.10 * measured.tokens, (total, measured.tokens)
    assert abs(calls - measured.calls) <= 0.10 * measured.calls
    expected_cost = Price(input=3, output=15, input_cache_read=0.3).cost(input_tokens - cached, output, cached)
    assert row[9] == f"${expected_cost:,.2f}"

    # The prior needs no pilot: the same grid for a model Inspect knows, priced from the file.
    prior = vendomini("plan", config, *grid, "--model", model, "--prices", prices, timeout=300)
    assert prior.returncode == 0, prior.stderr
    assert _projected(prior.stdout, model)[1:5] == ["prior", "2", "40", "40"]

    # The key is in none of the new outputs: the ledger, the BUDGET lines, the plan, the report.
    report = vendomini("analyze", tmp_path / "pilot", "--out", tmp_path / "report", "--bootstrap", "0", timeout=300)
    assert report.returncode == 0, report.stderr
    key = fake_server.api_key
    outputs = [(f"{name} output", (done.stdout + done.stderr).encode())
               for name, done in (("run", pilot), ("run", full), ("plan", planned), ("plan", prior),
                                  ("analyze", report))]  # fmt: skip
    texts = [*outputs, *texts_below(tmp_path)]
    assert any(name.endswith(LEDGER_FILE) for name, _ in texts) and any("BUDGET:" in d.decode() for _, d in outputs)
    for name, data in texts:
        assert key.encode() not in data, f"the API key is written in {name}"
