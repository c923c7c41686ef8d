"""The `reset` recovery tool restarts the conversation window: the unit rule, and a scripted mockllm run
through Inspect whose logged model calls show what the model saw before and after the reset."""

from __future__ import annotations

import json
from typing import Any

from inspect_ai.event import InfoEvent, ModelEvent
from inspect_ai.model import ChatMessageAssistant, ChatMessageSystem, ChatMessageTool, ChatMessageUser
from inspect_ai.tool import ToolCall
from test_agent import conversation
from test_inspect_e2e import MOCK, only_sample, run, tool_call, trace_rows

from vendomini_eval.solvers.agent import restart_window, trim_window
from vendomini_eval.tasks.phase3 import phase3


def reset_turn(*functions: str) -> list[Any]:
    """One reply calling `functions` in order, and the results that answer it."""
    calls = [ToolCall(id=f"r{i}", function=f, arguments={"expected_success": True}) for i, f in enumerate(functions)]
    results = [ChatMessageTool(content='{"ok":true}', tool_call_id=c.id, function=c.function) for c in calls]
    return [ChatMessageAssistant(content="", tool_calls=calls), *results]


def test_restart_window_keeps_prompt_task_and_the_reset_turn() -> None:
    messages = conversation(6)
    turn = reset_turn("reset")
    assert restart_window(messages + turn) == messages[:2] + turn
    # trim_window still bounds the restarted window, and has nothing older to add to it.
    assert trim_window(restart_window(messages + turn), budget_tokens=100_000) == messages[:2] + turn


def test_restart_window_keeps_the_whole_reply_that_called_reset() -> None:
    """A reply with several calls, one of them reset: the window restarts from that reply, all its calls and
    results kept (every call the model sees keeps its result)."""
    messages = conversation(3)
    turn = reset_turn("check_budget", "reset", "wait")
    assert restart_window(messages + turn) == messages[:2] + turn


def test_restart_window_without_a_reply_changes_nothing() -> None:
    head = [ChatMessageSystem(content="system"), ChatMessageUser(content="task")]
    assert restart_window(head) == head


def test_reset_restarts_the_window_through_inspect(tmp_path: Any, no_network: list[Any]) -> None:
    outputs = [
        tool_call("check_catalogue", {"expected_success": True}),
        tool_call("write_note", {"key": "plan", "text": "buy SKU-01 from S1", "expected_success": True}),
        tool_call("reset", {}),  # missing its prediction: rejected, so no reset
        tool_call("wait", {"expected_success": True}),
        tool_call("reset", {"expected_success": True}),
        tool_call("read_note", {"key": "plan", "expected_success": True}),
    ]
    task = phase3(p_shock=0.0, recovery_tools="reset", complexity_level=1, max_steps=len(outputs), replications=1)
    log = run(task, model=MOCK, model_args={"custom_outputs": outputs}, tmp_path=tmp_path)
    sample = only_sample(log)
    assert [(tool, valid) for tool, valid, _ in trace_rows(sample)] == [
        ("check_catalogue", True), ("write_note", True), ("reset", False), ("wait", True), ("reset", True),
        ("read_note", True),
    ]  # fmt: skip

    calls = [e for e in sample.events if isinstance(e, ModelEvent)]
    assert len(calls) == len(outputs)
    # Each call before the reset saw the whole conversation so far (the failed reset restarted nothing) ...
    assert [len(call.input) for call in calls[:5]] == [2, 4, 6, 8, 10]
    # ... and the call after it sees only the system prompt, the task, the reset call and its briefing.
    system, task_message, reply, briefing = calls[5].input
    assert system.role == "system" and system.text == calls[0].input[0].text
    assert task_message.role == "user" and task_message.text == calls[0].input[1].text
    assert isinstance(reply, ChatMessageAssistant) and [c.function for c in reply.tool_calls or []] == ["reset"]
    assert isinstance(briefing, ChatMessageTool) and briefing.tool_call_id == reply.tool_calls[0].id
    observation = json.loads(briefing.text)
    assert observation["ok"] is True and observation["result"]["context_reset"] is True
    assert "cash" in json.dumps(observation["result"]["briefing"])
    assert len(calls[4].input) > len(calls[5].input)

    # The log says so: one info event, at the step of the successful reset.
    [event] = [e for e in sample.events if isinstance(e, InfoEvent) and "window_reset" in (e.data or {})]
    assert event.source == "vendomini"
    assert event.data["step"] == 5
    assert event.data["window_reset"] == {"messages_dropped": 8, "messages_kept": 4}
    assert "reset at step 5" in event.data["message"]

    # The notes live in the world: the note written before the reset is read after it.
    read = [m for m in sample.messages if isinstance(m, ChatMessageTool) and m.function == "read_note"]
    assert "buy SKU-01 from S1" in read[-1].text
