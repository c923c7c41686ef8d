"""The solver's bounded context window and its own options, run through Inspect with the scripted model."""

from __future__ import annotations

import json
from pathlib import Path

from inspect_ai import Task
from inspect_ai import eval as inspect_eval
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import ChatMessageAssistant, ChatMessageSystem, ChatMessageTool, ChatMessageUser
from inspect_ai.tool import ToolCall

from vendomini_eval.condition import Condition
from vendomini_eval.solvers import system_prompt, trim_window, vendomini_agent
from vendomini_eval.solvers.agent import LOW_WATER, MAX_WINDOW_MESSAGES, _estimate_tokens, bounded_window
from vendomini_eval.solvers.store import EpisodeRecord


def conversation(turns: int) -> list:
    messages = [ChatMessageSystem(content="system " * 50), ChatMessageUser(content="task")]
    for i in range(turns):
        call = ToolCall(id=f"c{i}", function="wait", arguments={"expected_success": True})
        messages.append(ChatMessageAssistant(content="", tool_calls=[call]))
        result = json.dumps({"day": i, "ok": True, "result": {"waited": True}})
        messages.append(ChatMessageTool(content=result, tool_call_id=f"c{i}", function="wait"))
    return messages


def test_window_keeps_prompt_and_recent_turns_within_budget() -> None:
    messages = conversation(500)
    window = trim_window(messages, budget_tokens=600)
    assert window[:2] == messages[:2]
    assert window[-1] is messages[-1]
    assert len(window) < len(messages)
    assert isinstance(window[2], ChatMessageAssistant)  # never starts with an orphaned tool result
    # A bigger conversation gives the same window size: the per-turn cost stays flat.
    assert len(trim_window(conversation(5000), budget_tokens=600)) == len(window)


def test_the_window_is_cut_in_blocks_so_each_request_extends_the_previous_one() -> None:
    """2,000 turns appended one at a time, the window applied before each request as the solver does: it stays
    within its budget, and at least 90% of the input tokens of a request repeat the previous request's input as
    its prefix (what a provider's prompt cache serves). Cut by one turn each time, almost none would."""
    budget, turn = 3_000, conversation(1)[2:]
    turns = [conversation(1)[2:] for _ in range(2_000)]  # new messages each turn, as in a run

    def share(cut: object) -> tuple[float, int, int]:
        window, previous, shared, total, largest = conversation(0), None, 0, 0, 0
        for new in turns:
            window = cut(window + new, budget)  # type: ignore[operator]
            tokens = [_estimate_tokens(m) for m in window]
            prefix = 0
            if previous is not None:
                while prefix < min(len(window), len(previous)) and window[prefix] is previous[prefix]:
                    prefix += 1
            shared, total = shared + sum(tokens[:prefix]), total + sum(tokens)
            largest, previous = max(largest, sum(tokens)), window
        return shared / total, largest, len(window)

    cached, largest, size = share(bounded_window)
    assert cached >= 0.9 and largest <= budget + sum(_estimate_tokens(m) for m in turn)
    assert LOW_WATER * budget / 2 < sum(_estimate_tokens(m) for m in conversation(0)) + size // 2 * sum(
        _estimate_tokens(m) for m in turn) <= budget  # fmt: skip
    assert share(trim_window)[0] < 0.2  # the old way: a cut every turn once full
    long = conversation(MAX_WINDOW_MESSAGES // 2)  # two messages a turn
    assert len(bounded_window(long, 10**9)) == len(long)  # at the message cap: kept
    assert len(bounded_window(long + turn, 10**9)) <= 2 + LOW_WATER * MAX_WINDOW_MESSAGES + 2  # over it: halved


def test_window_keeps_everything_that_fits() -> None:
    messages = conversation(3)
    assert trim_window(messages, budget_tokens=100_000) == messages


def test_system_prompt_states_the_protocol_only_when_predictions_are_taken() -> None:
    assert "expected_success" in system_prompt(Condition(prediction_mode="required"))
    assert "confidence" in system_prompt(Condition(prediction_mode="required+confidence"))
    assert "expected_success" not in system_prompt(Condition(prediction_mode="none"))


def test_vendomini_agent_with_a_small_context_budget_runs_the_episode(tmp_path: Path) -> None:
    condition = Condition(max_steps=60, p_shock=0.2)
    sample = Sample(id="one", input="Run it.", metadata={"condition": condition.model_dump(), "seed": 11})
    task = Task(dataset=MemoryDataset([sample]), solver=vendomini_agent(context_tokens=800))
    (log,) = inspect_eval(task, model="vendomini/heuristic", log_dir=str(tmp_path), display="none")
    assert log.status == "success"
    state_store = log.samples[0].store
    record = EpisodeRecord.model_validate(
        {key.split(":", 1)[1]: value for key, value in state_store.items() if key.startswith("EpisodeRecord:")}
    )
    assert record.outcome in ("censored", "crashed", "terminated")
    assert record.summary is not None and record.summary["steps"] >= 1
    assert len(record.trace["columns"]["state_hash"]) == record.summary["steps"]


def test_window_always_keeps_the_latest_turn_even_over_budget() -> None:
    messages = conversation(5)
    big = ChatMessageTool(content="x" * 40_000, tool_call_id="big", function="check_catalogue")
    call = ToolCall(id="big", function="check_catalogue", arguments={})
    messages += [ChatMessageAssistant(content="", tool_calls=[call]), big]
    window = trim_window(messages, budget_tokens=500)
    assert window[-2:] == messages[-2:]  # the model sees the answer to its last call
    assert window[:2] == messages[:2]


def test_large_results_do_not_reset_the_scripted_agent(tmp_path: Path) -> None:
    """Level 4 catalogues exceed the scripted model's small window; the run must still progress."""
    condition = Condition(max_steps=80, p_shock=0.0, complexity_level=4)
    sample = Sample(id="one", input="Run it.", metadata={"condition": condition.model_dump(), "seed": 5})
    task = Task(dataset=MemoryDataset([sample]), solver=vendomini_agent())
    (log,) = inspect_eval(task, model="vendomini/heuristic", log_dir=str(tmp_path), display="none")
    store = log.samples[0].store
    tools = store["EpisodeRecord:trace"]["columns"]["tool"]
    assert tools.count("check_catalogue") <= 3
    assert store["EpisodeRecord:summary"]["crashed"] is False
    assert store["EpisodeRecord:summary"]["counters"]["orders_shipped"] > 0
