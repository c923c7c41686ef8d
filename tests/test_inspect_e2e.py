"""End to end through Inspect, offline: the phase tasks, the scripted-policy models and a scripted mockllm.

Checks what a user sees in the log: status, scores, the EpisodeRecord in the sample store, transcript events.
A crash (the detector confirmed a breakdown) ends the sample early with a "vendomini" info event; a malformed
model reply is an invalid step, never a sample error; an Inspect limit is truncation (outcome "limit"), never a
crash.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from inspect_ai import Task, eval
from inspect_ai.event import InfoEvent, ModelEvent
from inspect_ai.log import EvalLog, EvalSample, read_eval_log
from inspect_ai.model import (
    ChatCompletionChoice,
    ChatMessage,
    ChatMessageAssistant,
    ChatMessageUser,
    ModelOutput,
    ModelUsage,
)
from inspect_ai.tool import ToolCall
from inspect_ai.util import Store

from vendomini_eval.crash import CRASH_TYPES
from vendomini_eval.scorers import BUSINESS_KEYS, PE_KEYS, SURVIVAL_KEYS
from vendomini_eval.solvers import EpisodeRecord
from vendomini_eval.solvers.agent import NUDGE
from vendomini_eval.tasks.phase1 import phase1
from vendomini_eval.tasks.phase2 import phase2
from vendomini_eval.tasks.phase3 import phase3
from vendomini_eval.tasks.phase4 import phase4
from vendomini_eval.tasks.phase5 import phase5

ROOT = Path(__file__).resolve().parent.parent
MOCK = "mockllm/model"
SCORERS = ("survival", "incoherence", "crash_type", "business", "prediction_errors")


# ----- helpers ------------------------------------------------------------------------------------------------


def run(task: Task | str, model: str = "vendomini/heuristic", tmp_path: Any = None, **kwargs: Any) -> EvalLog:
    """Evaluate offline and read the log back from disk (what a user would open)."""
    [log] = eval(task, model=model, log_dir=str(tmp_path), display="none", **kwargs)
    return read_eval_log(log.location, resolve_attachments=True)


def only_sample(log: EvalLog) -> EvalSample:
    assert log.status == "success", log.error
    assert log.samples is not None and len(log.samples) == 1
    [sample] = log.samples
    assert sample.error is None
    return sample


def record(sample: EvalSample) -> EpisodeRecord:
    return EpisodeRecord(store=Store(sample.store))


def trace_rows(sample: EvalSample) -> list[tuple[str, bool, str | None]]:
    columns = record(sample).trace["columns"]
    return list(zip(columns["tool"], columns["valid"], columns["error_kind"], strict=True))


def crash_events(sample: EvalSample) -> list[InfoEvent]:
    return [e for e in sample.events if isinstance(e, InfoEvent) and isinstance(e.data, dict) and "crash" in e.data]


def assert_scored(sample: EvalSample) -> None:
    assert sample.scores is not None and set(sample.scores) == set(SCORERS)
    assert set(sample.scores["survival"].value) == set(SURVIVAL_KEYS)
    assert set(sample.scores["business"].value) == set(BUSINESS_KEYS)
    assert set(sample.scores["prediction_errors"].value) == set(PE_KEYS)
    assert sample.scores["crash_type"].value in ("none", *CRASH_TYPES)


USAGE = ModelUsage(input_tokens=40, output_tokens=10, total_tokens=50)


def with_usage(output: ModelOutput) -> ModelOutput:
    """Every mock output carries its usage: without one, Inspect counts tokens with a downloaded tokenizer."""
    output.usage = USAGE.model_copy()
    return output


def tool_call(function: str, arguments: dict[str, Any]) -> ModelOutput:
    return with_usage(ModelOutput.for_tool_call(MOCK, function, arguments))


def text_reply(text: str) -> ModelOutput:
    return with_usage(ModelOutput.from_content(MOCK, text))


def tool_calls(*calls: tuple[str, dict[str, Any]]) -> ModelOutput:
    """One reply with several tool calls."""
    message = ChatMessageAssistant(
        content="",
        model=MOCK,
        source="generate",
        tool_calls=[ToolCall(id=f"multi-{i}", function=f, arguments=a) for i, (f, a) in enumerate(calls)],
    )
    return with_usage(
        ModelOutput(model=MOCK, choices=[ChatCompletionChoice(message=message, stop_reason="tool_calls")])
    )


def mock_task(max_steps: int, **overrides: Any) -> Task:
    """Phase 1's default condition (prediction_mode required, structured) without shocks."""
    return phase1(p_shock=0.0, max_steps=max_steps, replications=1, **overrides)


def wait() -> ModelOutput:
    return tool_call("wait", {"expected_success": True})


# ----- the phase tasks with the scripted policies -------------------------------------------------------------


@pytest.mark.parametrize("phase", [phase1, phase2, phase3, phase4, phase5], ids=lambda f: f.__name__)
def test_phase_tasks_run_offline(phase: Callable[..., Task], tmp_path: Any, no_network: list[Any]) -> None:
    log = run(phase(max_steps=40, replications=1), tmp_path=tmp_path)
    sample = only_sample(log)
    assert_scored(sample)
    stored = record(sample)
    # The competent heuristic runs its business through these 40 steps (no crash, orders shipped).
    assert stored.outcome == "censored" and stored.summary["steps"] == 40
    assert stored.summary["counters"]["orders_shipped"] > 0
    assert stored.summary["steps"] == sample.scores["survival"].value["steps"]
    assert stored.condition == log.eval.metadata["condition"] == sample.metadata["condition"]
    assert len(stored.trace["columns"]["step"]) == stored.summary["steps"]
    assert log.results is not None and log.results.headline is not None
    assert log.results.headline.metric == "crash_rate"
    assert log.eval.metadata["experiment"] == phase.__name__
    assert sample.model_usage  # the scripted model reports usage, so nothing counts tokens with a tokenizer


def test_phase_task_by_registry_name(tmp_path: Any) -> None:
    """`inspect_ai.eval("vendomini_eval/phase1")` as a user runs it: in a fresh process, outside the checkout
    (a `python` started in the checkout root sees the egg-info setuptools leaves there, not the install)."""
    code = (
        "import sys; from inspect_ai import eval; "
        "eval('vendomini_eval/phase1', model='vendomini/heuristic', task_args={'max_steps': 20, 'replications': 1}, "
        "log_dir=sys.argv[1], display='none')"
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "logs")], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (path,) = (tmp_path / "logs").glob("*.eval")
    log = read_eval_log(str(path))
    assert log.status == "success"
    assert log.eval.task_registry_name == "vendomini_eval/phase1"
    sample = only_sample(log)
    assert_scored(sample)
    assert record(sample).summary["steps"] <= 20


def test_fault_model_crashes_near_its_onset_and_ends_the_sample(tmp_path: Any, no_network: list[Any]) -> None:
    max_steps, onset = 300, 100
    log = run(
        phase1(max_steps=max_steps, replications=1),
        model_args={"fault": "looping", "onset": onset},
        tmp_path=tmp_path,
    )
    sample = only_sample(log)
    assert sample.scores["crash_type"].value == "looping"
    survival = sample.scores["survival"].value
    assert survival["crashed"] == 1 and survival["censored"] == 0
    assert abs(survival["time_to_crash"] - onset) <= 10
    assert survival["steps"] < max_steps  # the crash ended the sample
    stored = record(sample)
    assert stored.outcome == "crashed" and stored.summary["steps"] == survival["steps"]
    assert survival["non_starter"] == 0 and stored.summary["first_progress_step"] < onset
    [event] = crash_events(sample)
    assert event.source == "vendomini"
    assert event.data["crash"]["crash_type"] == "looping"
    assert event.data["crash"]["onset_step"] == survival["time_to_crash"]
    assert event.data["step"] == survival["steps"] == event.data["crash"]["resolved_step"]
    assert "crash: looping" in event.data["message"]


def test_heuristic_without_shocks_reaches_max_steps(tmp_path: Any, no_network: list[Any]) -> None:
    max_steps = 200
    log = run(phase1(p_shock=0.0, max_steps=max_steps, replications=2), tmp_path=tmp_path)
    assert log.status == "success" and log.samples is not None and len(log.samples) == 2
    for sample in log.samples:
        assert sample.error is None and sample.limit is None
        assert sample.scores["survival"].value == {
            "time_to_crash": max_steps, "crashed": 0, "non_starter": 0, "censored": 1, "terminated": 0,
            "steps": max_steps,
        }  # fmt: skip
        assert sample.scores["crash_type"].value == "none"
        assert record(sample).outcome == "censored"
        assert not crash_events(sample)
    assert log.results is not None
    [overall] = [s for s in log.results.scores if "crash_rate" in s.metrics]
    assert overall.metrics["crash_rate"].value == 0


# ----- a scripted mockllm -------------------------------------------------------------------------------------


def test_mockllm_success_path(tmp_path: Any, no_network: list[Any]) -> None:
    outputs = [
        tool_call("check_catalogue", {"expected_success": True}),
        tool_call("check_budget", {"expected_success": True, "expected_cash": 750.0}),
        tool_call("check_inventory", {"expected_success": True, "expected_units_in_stock": 0}),
        tool_call("check_orders", {"expected_success": True}),
        tool_call("write_note", {"key": "plan", "text": "watch cash", "expected_success": True}),
        tool_call("read_note", {"key": "plan", "expected_success": True}),
        wait(),
        wait(),
    ]
    log = run(mock_task(len(outputs)), model=MOCK, model_args={"custom_outputs": outputs}, tmp_path=tmp_path)
    sample = only_sample(log)
    assert_scored(sample)
    assert [tool for tool, _, _ in trace_rows(sample)] == [o.message.tool_calls[0].function for o in outputs]
    assert all(valid for _, valid, _ in trace_rows(sample))
    assert record(sample).outcome == "censored"
    survival = sample.scores["survival"].value
    assert survival == {"time_to_crash": 8, "crashed": 0, "non_starter": 0, "censored": 1, "terminated": 0, "steps": 8}
    pe = sample.scores["prediction_errors"].value
    assert pe["pe_causal_count"] == len(outputs) and pe["pe_causal_sum"] == 0  # every call succeeded as stated
    assert pe["pe_quantity_count"] == 1 and pe["pe_quantity_sum"] == 0  # the empty warehouse, as stated
    assert pe["pe_cost_count"] == 1  # the cash belief
    assert sample.model_usage[MOCK].total_tokens == USAGE.total_tokens * len(outputs)


def invalid_outputs(n: int) -> list[ModelOutput]:
    """Distinct invalid calls (no repeated action, so no loop): unknown tools and malformed orders in turn."""
    outputs = []
    for i in range(n):
        if i % 2:
            outputs.append(tool_call("restock_everything", {"batch": i}))
        else:
            outputs.append(tool_call("order", {"supplier_id": "S1", "quantity": i, "expected_success": True}))
    return outputs


def test_mockllm_invalid_burst_crash_path(tmp_path: Any, no_network: list[Any]) -> None:
    max_steps, outputs = 100, invalid_outputs(100)
    log = run(mock_task(max_steps), model=MOCK, model_args={"custom_outputs": outputs}, tmp_path=tmp_path)
    sample = only_sample(log)
    assert_scored(sample)
    assert sample.scores["crash_type"].value == "invalid_burst"
    survival = sample.scores["survival"].value
    assert survival["crashed"] == 1 and survival["steps"] < 40 and survival["time_to_crash"] <= 10
    # it never made a valid order or shipment: a non-starter, not a breakdown after accumulating PE
    assert record(sample).outcome == "non_starter" and survival["non_starter"] == 1
    assert {kind for _, valid, kind in trace_rows(sample)} == {"unknown_tool", "malformed"}
    assert not any(valid for _, valid, _ in trace_rows(sample))
    [event] = crash_events(sample)
    assert event.data["crash"]["crash_type"] == "invalid_burst"


def test_mockllm_replies_without_tool_calls_crash_and_are_nudged(tmp_path: Any, no_network: list[Any]) -> None:
    outputs = [text_reply(f"Let me think about the market, part {i}.") for i in range(100)]
    log = run(mock_task(100), model=MOCK, model_args={"custom_outputs": outputs}, tmp_path=tmp_path)
    sample = only_sample(log)
    assert sample.scores["crash_type"].value in ("invalid_burst", "stall")
    assert record(sample).outcome == "non_starter"
    steps = sample.scores["survival"].value["steps"]
    assert steps < 40
    assert trace_rows(sample) == [("<no_tool>", False, "no_tool_call")] * steps
    # Every generate after a reply without a tool call reads that reply and then the nudge.
    model_events = [e for e in sample.events if isinstance(e, ModelEvent)]
    assert len(model_events) == steps
    for event in model_events[1:]:
        reply, nudge = event.input[-2], event.input[-1]
        assert reply.role == "assistant" and not reply.tool_calls
        assert_nudge(nudge)


def assert_nudge(message: ChatMessage) -> None:
    assert isinstance(message, ChatMessageUser) and message.text.startswith(NUDGE)
    observation = json.loads(message.text.splitlines()[-1])
    assert observation["ok"] is False and observation["error"] == "no_tool_call"


def test_mockllm_malformed_replies_are_invalid_steps_not_errors(tmp_path: Any, no_network: list[Any]) -> None:
    order = {"supplier_id": "S1", "sku_id": "SKU-01", "expected_success": False, "expected_cost": 50.0,
             "expected_delivery_day": 5, "expected_quantity": 10}  # fmt: skip
    outputs = [
        tool_call("check_catalogue", {"expected_success": True}),
        tool_call("frobnicate", {"level": 3}),  # unknown tool
        tool_call("order", {**order, "quantity": "ten"}),  # bad argument type
        tool_call("order", {"supplier_id": "S1", "expected_success": True}),  # missing arguments and predictions
        tool_call("wait", {}),  # missing required prediction
        tool_call("order", {**order, "supplier_id": "S99", "quantity": 10}),  # passes the schema, the world refuses
        tool_call("wait", {"expected_success": "yes"}),  # prediction of the wrong type
        text_reply("I will now wait."),  # no tool call
        text_reply('{"function": "wait", "arguments": {"expected_success": true}}'),  # looks like a call: plain text
        tool_calls(  # several calls in one reply: one step each, in order
            ("check_orders", {"expected_success": True}),
            ("nope", {}),
            ("order", {**order, "quantity": 1.5}),
            ("wait", {"expected_success": True}),
        ),
        wait(),
    ]
    expected = [
        ("check_catalogue", True, None),
        ("<unknown>", False, "unknown_tool"),
        ("order", False, "malformed"),
        ("order", False, "malformed"),
        ("wait", False, "bad_prediction"),
        ("order", False, "unknown_supplier"),
        ("wait", False, "bad_prediction"),
        ("<no_tool>", False, "no_tool_call"),
        ("<no_tool>", False, "no_tool_call"),
        ("check_orders", True, None),
        ("<unknown>", False, "unknown_tool"),
        ("order", False, "malformed"),
        ("wait", True, None),
        ("wait", True, None),
    ]
    log = run(mock_task(len(expected)), model=MOCK, model_args={"custom_outputs": outputs}, tmp_path=tmp_path)
    sample = only_sample(log)
    assert_scored(sample)
    assert trace_rows(sample) == expected
    assert record(sample).outcome == "censored"
    assert sample.scores["survival"].value["steps"] == len(expected)

    # Each rejected call's tool message carries the observation: ok false and the trace's error kind.
    rejected = [m for m in sample.messages if m.role == "tool" and m.error is not None]
    kinds = [json.loads(m.error.message)["error"] for m in rejected]
    assert kinds == [kind for tool, valid, kind in expected if not valid and tool != "<no_tool>"]
    # ... as content too, which is all that a chat template (hf/ models) renders of a tool message.
    assert all(m.text == m.error.message for m in rejected)
    # The calls of the one multi-call reply are answered in order, each by its own step.
    multi = [m for m in sample.messages if m.role == "tool" and m.tool_call_id.startswith("multi-")]
    assert [m.tool_call_id for m in multi] == ["multi-0", "multi-1", "multi-2", "multi-3"]
    days = [json.loads(m.error.message if m.error else m.text)["day"] for m in multi]
    assert days == [10, 11, 12, 13]  # one step (and, at one step a day, one day) per call
    # Both replies without a tool call are followed by the nudge.
    nudges = [m for m in sample.messages if isinstance(m, ChatMessageUser) and m.text.startswith(NUDGE)]
    assert len(nudges) == 2
    for nudge in nudges:
        assert_nudge(nudge)


# ----- Inspect limits are truncation, not crashes -------------------------------------------------------------


def assert_cut_by_limit(sample: EvalSample, limit_type: str, max_steps: int) -> None:
    assert sample.error is None
    assert sample.limit is not None and sample.limit.type == limit_type
    stored = record(sample)
    assert stored.outcome == "limit" and stored.limit == limit_type
    survival = sample.scores["survival"].value
    assert survival["crashed"] == 0 and survival["censored"] == 1
    assert 0 < survival["steps"] < max_steps
    assert sample.scores["crash_type"].value == "none"
    assert sample.scores["survival"].metadata["outcome"] == "limit"
    assert not crash_events(sample)


@pytest.mark.parametrize(
    ("limits", "limit_type"),
    [({"message_limit": 12}, "message"), ({"token_limit": 3000}, "token")],
)
def test_inspect_limits_are_not_crashes(
    limits: dict[str, int], limit_type: str, tmp_path: Any, no_network: list[Any]
) -> None:
    max_steps = 1000
    log = run(phase1(p_shock=0.0, max_steps=max_steps, replications=1), tmp_path=tmp_path, **limits)
    assert log.status == "success"
    assert_cut_by_limit(only_sample(log), limit_type, max_steps)


def test_mockllm_token_limit_is_not_a_crash(tmp_path: Any, no_network: list[Any]) -> None:
    """A model that keeps going (an endless generator of valid waits) is cut by the token limit."""

    def endless_waits(*_: Any) -> ModelOutput:
        return wait()

    max_steps = 1000
    token_limit = 10 * USAGE.total_tokens
    log = run(
        mock_task(max_steps),
        model=MOCK,
        model_args={"custom_outputs": endless_waits},
        tmp_path=tmp_path,
        token_limit=token_limit,
    )
    sample = only_sample(log)
    assert_cut_by_limit(sample, "token", max_steps)
    assert sample.scores["survival"].value["steps"] == 10


@pytest.mark.parametrize("limits", [{"time_limit": 1}, {"working_limit": 1}], ids=["time", "working"])
def test_time_limits_are_recorded_as_limit(limits: dict[str, int], tmp_path: Any, no_network: list[Any]) -> None:
    max_steps = 1_000_000
    log = run(phase1(p_shock=0.0, max_steps=max_steps, replications=1), tmp_path=tmp_path, **limits)
    sample = only_sample(log)
    assert sample.limit is not None  # Inspect did cut the run ...
    assert_cut_by_limit(sample, sample.limit.type, max_steps)  # ... but the record must say so


# ----- Inspect's generate cache -------------------------------------------------------------------------------


def test_a_longer_run_after_a_cached_shorter_one(
    tmp_path: Any, no_network: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INSPECT_CACHE_DIR", str(tmp_path / "cache"))
    logs = [
        run(phase1(p_shock=0.0, max_steps=steps, replications=1), tmp_path=tmp_path / f"run{steps}", cache=True)
        for steps in (3, 6)
    ]
    short, long = (only_sample(log) for log in logs)
    # The solver turns the generate cache off: each turn answers the live episode, so both runs finish cleanly.
    assert all(log.status == "success" for log in logs)
    assert short.error is None and long.error is None
    assert record(short).summary["steps"] == 3 and record(long).summary["steps"] == 6
