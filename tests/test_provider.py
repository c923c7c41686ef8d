"""The `vendomini/...` Inspect models: scripted policies served through Inspect's ModelAPI.

Conversations are hand-built from real Episode steps (a valid call's observation as the tool message content, a
rejected call's as its error message) and fed to the provider through a bounded window, so the provider can only
use the newest tool result. Its decisions must equal those of the same policy driven directly.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from inspect_ai import Task
from inspect_ai import eval as inspect_eval
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import (
    ChatMessage,
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageTool,
    ChatMessageUser,
    GenerateConfig,
    ModelOutput,
    get_model,
)
from inspect_ai.tool import ToolCall, ToolCallError

import vendomini_eval.providers.scripted as provider
from vendomini_eval.condition import Condition
from vendomini_eval.episode import AgentAction, Episode
from vendomini_eval.policies import FAULTS, POLICIES, PolicyContext, make_policy
from vendomini_eval.policies.base import FACTS_MARKER
from vendomini_eval.policies.behaviours import CHAT_BY_TOOL
from vendomini_eval.policies.faults import FaultyHeuristic
from vendomini_eval.providers.scripted import VendoMiniPolicyAPI, policy_seed
from vendomini_eval.solvers import vendomini_agent
from vendomini_eval.world.tools import TOOL_SPECS

STEPS = 50
WINDOW = 2  # messages kept after the system prompt and the task: the last call and its result


def condition(**overrides: Any) -> Condition:
    # continue_after_crash keeps crashing policies running for the whole comparison
    return Condition(p_shock=0.3, max_steps=200, continue_after_crash=200, **overrides)


def system_text(c: Condition) -> str:
    return f"You run a business.\n\n{FACTS_MARKER}{json.dumps(PolicyContext.for_condition(c).facts())}"


def prompt(c: Condition, task: str = "Run the business.") -> list[ChatMessage]:
    return [ChatMessageSystem(content=system_text(c)), ChatMessageUser(content=task)]


def split(call: ToolCall) -> tuple[AgentAction, dict[str, Any] | None]:
    """A call's parameters as the core takes them: the tool's arguments, and the rest as the prediction."""
    spec = TOOL_SPECS.get(call.function)
    if spec is None:
        return AgentAction(call.function, dict(call.arguments)), None
    names = spec.args.model_fields
    arguments = {k: v for k, v in call.arguments.items() if k in names}
    prediction = {k: v for k, v in call.arguments.items() if k not in names}
    return AgentAction(call.function, arguments), prediction or None


def tool_message(episode: Episode, call: ToolCall) -> ChatMessageTool:
    """Step the episode with the call; the result as the solver returns it."""
    result = episode.step(*split(call))
    text = json.dumps(result.observation(), separators=(",", ":"))
    if result.valid:
        return ChatMessageTool(content=text, tool_call_id=call.id, function=call.function)
    return ChatMessageTool(
        content="", tool_call_id=call.id, function=call.function, error=ToolCallError("unknown", text)
    )


def direct_calls(policy: Any, c: Condition, seed: int, steps: int = STEPS) -> list[tuple[str, dict[str, Any]]]:
    """The policy driven directly, as the runner does: (tool, arguments + prediction) per step."""
    episode, observation, calls = Episode(c, seed), None, []
    for _ in range(steps):
        action, prediction = policy.act(observation)
        calls.append((action.tool, {**action.arguments, **(prediction or {})}))
        observation = episode.step(action, prediction).observation()
    return calls


class Driver:
    """One conversation with a provider: a bounded window over a real Episode."""

    def __init__(self, generate: Callable[[list[ChatMessage]], Any], c: Condition, seed: int, task: str = "") -> None:
        self.generate = generate
        self.episode = Episode(c, seed)
        self.head = prompt(c, task or "Run the business.")
        self.body: list[ChatMessage] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.outputs: list[ModelOutput] = []

    async def turn(self) -> ToolCall:
        output = await self.generate(self.head + self.body[-WINDOW:])
        self.outputs.append(output)
        (call,) = output.message.tool_calls
        self.calls.append((call.function, call.arguments))
        self.body += [output.message, tool_message(self.episode, call)]
        return call


def api(name: str = "heuristic", **model_args: Any) -> VendoMiniPolicyAPI:
    return VendoMiniPolicyAPI(name, **model_args)


def api_generate(model: VendoMiniPolicyAPI) -> Callable[[list[ChatMessage]], Any]:
    return lambda messages: model.generate(messages, [], "auto", GenerateConfig())


async def run_turns(driver: Driver, steps: int = STEPS) -> None:
    for _ in range(steps):
        await driver.turn()


# ----- one conversation -------------------------------------------------------------------------------------
def test_first_call_is_one_tool_call_with_usage() -> None:
    c = condition()
    output = asyncio.run(api().generate(prompt(c), [], "auto", GenerateConfig()))
    (call,) = output.message.tool_calls
    assert call.function == "check_catalogue"
    assert call.id.startswith("vm-") and call.id == output.message.id
    assert output.stop_reason == "tool_calls"
    assert output.usage is not None and output.usage.input_tokens > 0 and output.usage.output_tokens > 0
    assert output.usage.total_tokens == output.usage.input_tokens + output.usage.output_tokens


def test_heuristic_through_get_model_equals_direct_policy() -> None:
    c, seed = condition(), 7
    model = get_model("vendomini/heuristic", memoize=False)
    driver = Driver(model.generate, c, seed)
    asyncio.run(run_turns(driver))
    context = PolicyContext.for_condition(c)
    expected = direct_calls(make_policy("heuristic", context, 0), c, seed)
    assert driver.calls == expected
    assert len({tool for tool, _ in expected}) >= 4  # a real run: checks, orders, ships
    ids = [o.message.tool_calls[0].id for o in driver.outputs]
    assert len(set(ids)) == STEPS
    assert all(o.usage is not None and o.usage.total_tokens > 0 for o in driver.outputs)


def test_same_run_gives_the_same_ids_and_calls() -> None:
    c = condition()
    runs = []
    for _ in range(2):
        driver = Driver(api_generate(api()), c, 3)
        asyncio.run(run_turns(driver, 20))
        runs.append(([o.message.tool_calls[0].id for o in driver.outputs], driver.calls))
    assert runs[0] == runs[1]


@pytest.mark.parametrize("fault", ["invalid_burst", "looping"])
def test_fault_args_give_the_fault_policy(fault: str) -> None:
    c, seed, onset = condition(), 11, 15
    model = api(fault=fault, onset=onset, seed=5)
    driver = Driver(api_generate(model), c, seed)
    asyncio.run(run_turns(driver))
    (conversation,) = model._conversations.values()
    assert isinstance(conversation.policy, FaultyHeuristic)
    assert (conversation.policy.fault, conversation.policy.onset) == (fault, onset)
    policy = FaultyHeuristic(
        PolicyContext.for_condition(c),
        policy_seed(5, driver.head[0].text, driver.head[1].text),
        fault=fault,
        onset=onset,
    )
    assert driver.calls == direct_calls(policy, c, seed)
    if fault == "looping":
        assert {tool for tool, _ in driver.calls[onset - 1 :]} == {"check_catalogue"}
    else:  # rejected calls reached the policy as error observations
        assert any(m.error is not None for m in driver.body if isinstance(m, ChatMessageTool))


def test_random_policy_seed_depends_on_model_seed_and_prompt() -> None:
    c = condition(complexity_level=4)
    context = PolicyContext.for_condition(c)
    calls = {}
    for seed, task in ((0, "A"), (0, "B"), (1, "A")):
        driver = Driver(api_generate(api("random", seed=seed)), c, 2, task=task)
        asyncio.run(run_turns(driver, 30))
        expected = make_policy("random", context, policy_seed(seed, driver.head[0].text, task))
        assert driver.calls == direct_calls(expected, c, 2, 30)
        calls[seed, task] = driver.calls
    assert calls[0, "A"] != calls[0, "B"] != calls[1, "A"]


# ----- many conversations -----------------------------------------------------------------------------------
def test_interleaved_conversations_keep_separate_state() -> None:
    c = condition()
    model = api()
    drivers = [Driver(api_generate(model), c, seed, task=f"task {seed}") for seed in (1, 2, 3)]
    twin = Driver(api_generate(model), c, 3, task="task 3")  # same prompt as drivers[2], another conversation

    async def interleave() -> None:
        for step in range(STEPS):
            for i, driver in enumerate([*drivers, twin]):
                if (step + i) % 3:  # uneven progress
                    await driver.turn()
        for driver in [*drivers, twin]:
            await run_turns(driver, STEPS - len(driver.calls))

    asyncio.run(interleave())
    context = PolicyContext.for_condition(c)
    for driver in [*drivers, twin]:
        assert driver.calls == direct_calls(make_policy("heuristic", context, 0), c, driver.episode.seed)
    assert drivers[0].calls != drivers[1].calls
    first_ids = {d.outputs[0].message.tool_calls[0].id for d in [*drivers, twin]}
    assert len(first_ids) == 4
    assert len(model._conversations) == 4


def test_concurrent_samples_through_one_model() -> None:
    c = condition()
    model = get_model("vendomini/heuristic", memoize=False)
    drivers = [Driver(model.generate, c, seed, task=f"sample {seed}") for seed in range(8)]

    async def run_all() -> None:
        async with asyncio.TaskGroup() as group:
            for driver in drivers:
                group.create_task(run_turns(driver, 25))

    asyncio.run(run_all())
    context = PolicyContext.for_condition(c)
    for driver in drivers:
        assert driver.calls == direct_calls(make_policy("heuristic", context, 0), c, driver.episode.seed, 25)


def test_dropped_and_foreign_conversations_are_errors() -> None:
    c = condition()
    model = api(max_conversations=2)
    drivers = [Driver(api_generate(model), c, 1, task=f"task {i}") for i in range(3)]
    for driver in drivers:
        asyncio.run(driver.turn())
    with pytest.raises(ValueError, match="max_conversations"):
        asyncio.run(drivers[0].turn())  # least recently continued: dropped
    asyncio.run(drivers[2].turn())
    answered = drivers[2].head + drivers[2].body[:2]  # a tool result that was already answered
    with pytest.raises(ValueError, match="no live conversation"):
        asyncio.run(api_generate(model)(answered))


def test_a_reply_without_a_tool_call_continues_from_the_nudge(monkeypatch: pytest.MonkeyPatch) -> None:
    """A text reply is keyed by its metadata; the policy gets the observation that ends the nudge."""
    seen: list[dict[str, Any] | None] = []

    class Chatty:
        def act(self, observation: dict[str, Any] | None) -> tuple[AgentAction, None]:
            seen.append(observation)
            return (AgentAction(None, text="thinking") if len(seen) == 1 else AgentAction("wait", {})), None

    monkeypatch.setattr(provider, "make_policy", lambda *args, **kwargs: Chatty())
    model, c = api(), condition()
    messages = prompt(c)
    first = asyncio.run(api_generate(model)(messages))
    assert first.message.tool_calls is None and first.message.text == "thinking"
    assert first.usage is not None and first.usage.output_tokens > 0
    nudge = json.dumps({"day": 1, "ok": False, "error": "no_tool_call", "message": "Use a tool."})
    messages += [first.message, ChatMessageUser(content=f"You did not call a tool.\n{nudge}")]
    second = asyncio.run(api_generate(model)(messages))
    assert second.message.tool_calls[0].function == "wait"
    assert seen == [None, json.loads(nudge)]


def test_non_json_tool_error_is_read_as_a_rejected_call() -> None:
    c = condition()
    model = api()
    messages = prompt(c)
    first = asyncio.run(api_generate(model)(messages)).message
    call = first.tool_calls[0]
    error = ToolCallError("parsing", "Tool restock_all not found")
    messages += [first, ChatMessageTool(content="", tool_call_id=call.id, function=call.function, error=error)]
    output = asyncio.run(api_generate(model)(messages))
    assert output.message.tool_calls  # the heuristic carries on after a failed call
    model = api()
    first = asyncio.run(api_generate(model)(prompt(c))).message
    bad_result = ChatMessageTool(content="<html>", tool_call_id=first.tool_calls[0].id, function="check_catalogue")
    with pytest.raises(ValueError, match="not a VendoMini observation"):
        asyncio.run(api_generate(model)([*prompt(c), first, bad_result]))


# ----- behaviours ------------------------------------------------------------------------------------------------
def test_a_policy_reply_text_is_the_message_content() -> None:
    output = asyncio.run(api("chatter").generate(prompt(condition()), [], "auto", GenerateConfig()))
    (call,) = output.message.tool_calls
    assert call.function == "check_catalogue"
    assert output.message.text == CHAT_BY_TOOL["check_catalogue"]
    heuristic = asyncio.run(api().generate(prompt(condition()), [], "auto", GenerateConfig()))
    assert heuristic.message.text == ""
    assert output.usage is not None and heuristic.usage is not None
    assert output.usage.output_tokens > heuristic.usage.output_tokens


def test_a_behaviour_runs_through_inspect(tmp_path: Any) -> None:
    """`vendomini/chatter` in the real solver: its text-only replies reach the Episode as replies without a tool
    call, its other replies carry text, and the run is the one the policy makes when driven directly."""
    c, seed = Condition(max_steps=60, p_shock=0.2, continue_after_crash=60), 11
    sample = Sample(id="one", input="Run it.", metadata={"condition": c.model_dump(), "seed": seed})
    task = Task(dataset=MemoryDataset([sample]), solver=vendomini_agent())
    (log,) = inspect_eval(task, model="vendomini/chatter", log_dir=str(tmp_path), display="none")
    assert log.status == "success" and log.samples is not None
    (done,) = log.samples
    stored = {key.split(":", 1)[1]: value for key, value in done.store.items() if key.startswith("EpisodeRecord:")}
    columns = stored["trace"]["columns"]
    assert stored["summary"]["steps"] == 60
    assert 3 <= columns["error_kind"].count("no_tool_call") <= 10  # about one reply in ten
    replies = [m for m in done.messages if isinstance(m, ChatMessageAssistant)]
    assert replies and all(m.text for m in replies)
    system, user = done.messages[0].text, done.messages[1].text
    policy = make_policy("chatter", PolicyContext.for_condition(c), policy_seed(0, system, user))
    episode, observation = Episode(c, seed), None
    while not episode.done:
        observation = episode.step(*policy.act(observation)).observation()
    assert episode.trace.column("state_hash") == columns["state_hash"]


# ----- arguments, prompts, tokens -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "model_args", "match"),
    [
        ("foo", {}, "unknown policy 'foo'; choose one of heuristic, .*open_loop, alternating_reads, plan_only"),
        ("plan_only", {}, "behaviour 'plan_only' needs an onset step"),
        ("chatter", {"onset": 5}, "behaviour 'chatter' takes no onset"),
        ("chatter", {"fault": "looping", "onset": 5}, "heuristic policy only"),
        ("heuristic", {"fault": "bogus", "onset": 5}, f"unknown fault 'bogus'; choose one of {', '.join(FAULTS)}"),
        ("heuristic", {"onset": 5}, "onset is given without a fault"),
        ("heuristic", {"fault": "looping"}, "needs an onset"),
        ("heuristic", {"fault": "looping", "onset": 0}, "onset must be"),
        ("random", {"fault": "looping", "onset": 5}, "heuristic policy only"),
        ("heuristic", {"onest": 5}, "unknown model arg.*onest.*allowed: fault, onset, seed, max_conversations"),
        ("heuristic", {"seed": "abc"}, "seed must be an integer"),
        ("heuristic", {"max_conversations": 0}, "max_conversations must be >= 1"),
    ],
)
def test_bad_model_args_are_clear_errors(name: str, model_args: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        get_model(f"vendomini/{name}", memoize=False, **model_args)


def test_cli_style_string_args_are_accepted() -> None:
    model = api(fault="stall", onset="3", seed="9")
    assert (model.fault, model.onset, model.seed) == ("stall", 3, 9)
    model = api("plan_only", onset="50")
    assert (model.policy_name, model.fault, model.onset) == ("plan_only", None, 50)


def test_the_usage_error_lists_every_policy_and_the_behaviour_onsets() -> None:
    with pytest.raises(ValueError) as error:
        api("foo")
    message = str(error.value)
    assert all(f"{name}" in message for name in POLICIES)
    assert "(alternating_reads, plan_only, only_wait, malformed_burst)" in message


def test_a_prompt_without_facts_is_refused() -> None:
    messages = [ChatMessageSystem(content="You are helpful."), ChatMessageUser(content="Hi")]
    with pytest.raises(ValueError, match="VendoMini tasks only"):
        asyncio.run(api_generate(api())(messages))


def test_token_counts_never_download(monkeypatch: pytest.MonkeyPatch) -> None:
    import tiktoken

    def no_download(*_: Any, **__: Any) -> None:
        raise AssertionError("a tokenizer was requested")

    monkeypatch.setattr(tiktoken, "get_encoding", no_download)
    model = get_model("vendomini/heuristic", memoize=False)
    assert asyncio.run(model.api.count_text_tokens("x" * 40)) == 10
    messages = [*prompt(condition()), ChatMessageAssistant(content="ok")]
    assert asyncio.run(model.count_tokens(messages)) > 10
    assert model.api.max_connections() >= 100
