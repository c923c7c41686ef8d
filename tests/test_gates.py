"""Governance gates: the policy file and its errors, the rules of `evaluate`, the denied step of the Episode and
how the crash detector reads it, and the gate through Inspect's approval system (approval events in the log that
match the trace and the summary)."""

from __future__ import annotations

import html
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from inspect_ai import eval
from inspect_ai.event import ApprovalEvent
from inspect_ai.log import read_eval_log
from inspect_ai.model import ModelOutput, ModelUsage
from inspect_ai.util import Store
from pydantic import ValidationError

from tests.sweep_helpers import vendomini as sweep_cli
from vendomini_eval.analysis.gates import gates_line
from vendomini_eval.analysis.report import analyze, write_report
from vendomini_eval.analysis.thresholds import Thresholds, check_thresholds
from vendomini_eval.condition import Condition
from vendomini_eval.crash import DENIED, InvalidBurst, StepFacts, thresholds_for
from vendomini_eval.episode import AgentAction, Episode, gate_policy
from vendomini_eval.gates import GateCall, GatePolicy, GatePolicyError, evaluate, load_policy, shipped_policies
from vendomini_eval.policies import PolicyContext, make_policy
from vendomini_eval.solvers.store import EpisodeRecord
from vendomini_eval.tasks import vendomini
from vendomini_eval.tasks._build import TaskArgumentError
from vendomini_eval.worlds import WAREHOUSE, tool_arguments

MOCK = "mockllm/model"
GATED = Condition(gates="default", complexity_level=2, p_shock=0.0, prediction_mode="none", max_steps=200)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def call(tool: str = "order", cost: int = 0, cash: int = 10_000, denials: int = 0, **arguments: Any) -> GateCall:
    return GateCall(tool, arguments, cash, cost, denials)


# ----- the policy file -----------------------------------------------------------------------------------------


def test_shipped_policies_resolve_by_name_and_name_only_existing_tools() -> None:
    assert {"default", "none"} <= set(shipped_policies())
    default = load_policy("default", tool_arguments(WAREHOUSE))
    assert [r.reason for r in default.rules] == ["denial_streak", "order_over_cash_share", "expedite"]
    assert load_policy("none", tool_arguments(WAREHOUSE)).rules == ()
    assert gate_policy(Condition()) is None and gate_policy(GATED) == default


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules:\n  - tools: [order]\n    whn: {}\n    decision: deny\n    reason: x\n    message: m\n",
         "policy.yaml: rules[0].whn: unknown key"),
        ("rules:\n  - tools: [order]\n    decision: block\n    reason: x\n    message: m\n",
         "policy.yaml: rules[0].decision: Input should be 'allow', 'warn' or 'deny'"),
        ("rules:\n  - tools: [order]\n    decision: deny\n    reason: Too Big\n    message: m\n",
         "policy.yaml: rules[0].reason: 'Too Big' is not a short snake_case code"),
        ("rules:\n  - tools: [order]\n    when: {cost_over_cash_share: -1}\n    decision: deny\n    reason: x\n"
         "    message: m\n", "policy.yaml: rules[0].when.cost_over_cash_share: Input should be greater than 0"),
        ("rules: [\n", "policy.yaml: invalid YAML"),
    ],
)  # fmt: skip
def test_a_bad_policy_file_is_one_line_naming_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(GatePolicyError) as error:
        load_policy(write(tmp_path, text))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_rules_may_name_only_declared_tools_and_their_arguments(tmp_path: Path) -> None:
    rule = "rules:\n  - tools: [{tool}]\n    when: {{arguments: {{{arg}: {{gt: 5}}}}}}\n    decision: deny\n" \
           "    reason: x\n    message: m\n"  # fmt: skip
    with pytest.raises(GatePolicyError, match=r"rules\[0\]\.tools\[0\]: unknown tool 'oder'"):
        load_policy(write(tmp_path, rule.format(tool="oder", arg="quantity")), tool_arguments(WAREHOUSE))
    with pytest.raises(GatePolicyError, match=r"rules\[0\]\.when\.arguments\.qty: order has no argument 'qty'"):
        load_policy(write(tmp_path, rule.format(tool="order", arg="qty")), tool_arguments(WAREHOUSE))


def test_the_condition_knob_names_a_policy_and_keeps_every_other_seed(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="no such gate policy file or shipped policy; shipped: default"):
        Condition(gates="nope")
    with pytest.raises(ValidationError, match=r"rules\[0\]\.whn: unknown key"):
        Condition(gates=str(write(tmp_path, "rules:\n  - whn: 1\n")))
    assert "gates" not in Condition().canonical_json()  # left at None, the knob changes no seed
    with pytest.raises(TaskArgumentError, match="-T gates=nope: invalid value 'nope'"):
        vendomini(gates="nope")
    unknown_tool = write(tmp_path, "rules:\n  - tools: [oder]\n    decision: deny\n    reason: x\n    message: m\n")
    with pytest.raises(TaskArgumentError, match=r"-T gates=.*rules\[0\]\.tools\[0\]: unknown tool 'oder'"):
        vendomini(gates=str(unknown_tool))


# ----- evaluate ------------------------------------------------------------------------------------------------


def test_the_default_rules() -> None:
    policy = load_policy("default")
    decide = lambda c: evaluate(policy, c).label  # noqa: E731
    assert decide(call("check_budget")) == "allow:no_rule"
    assert decide(call("order", cost=5_000, cash=10_000)) == "allow:no_rule"  # exactly half is allowed
    assert decide(call("order", cost=5_001, cash=10_000)) == "deny:order_over_cash_share"
    assert decide(call("order", cost=1, cash=-100)) == "deny:order_over_cash_share"  # no cash: any cost
    assert decide(call("order", cost=0, cash=-100)) == "allow:no_rule"  # unpriceable: the world judges it
    assert decide(call("expedite", cost=900)) == "warn:expedite"
    # the streak: after five denials in a row actions are denied, reads are not (one of them ends the streak)
    assert decide(call("ship", denials=4)) == "allow:no_rule"
    assert decide(call("ship", denials=5)) == "deny:denial_streak"
    assert decide(call("expedite", denials=7)) == "deny:denial_streak"  # first match: the streak rule is first
    assert decide(call("check_orders", denials=9)) == "allow:no_rule"
    decision = evaluate(policy, call("order", cost=9_000))
    assert decision.explanation.startswith("order_over_cash_share: ") and decision.cost_cents == 9_000


def test_argument_and_state_conditions() -> None:
    policy = GatePolicy.model_validate({"name": "t", "rules": [
        {"tools": ["order"], "when": {"arguments": {"quantity": {"gt": 50}, "sku_id": {"in": ["SKU-01"]}}},
         "decision": "deny", "reason": "bulk", "message": "m"},
        {"tools": "*", "when": {"cash_below": 20.0}, "decision": "warn", "reason": "low_cash", "message": "m"},
        {"tools": ["order"], "when": {"cost_above": 100.0}, "decision": "warn", "reason": "big", "message": "m"},
    ]})  # fmt: skip
    decide = lambda c: evaluate(policy, c).label  # noqa: E731
    assert decide(call(quantity=51, sku_id="SKU-01")) == "deny:bulk"
    assert decide(call(quantity=50, sku_id="SKU-01")) == "allow:no_rule"
    assert decide(call(quantity=51, sku_id="SKU-02")) == "allow:no_rule"
    assert decide(call(quantity="51", sku_id="SKU-01")) == "allow:no_rule"  # wrong type: the world rejects it
    assert decide(call(sku_id="SKU-01")) == "allow:no_rule"  # missing argument
    assert decide(call("wait", cash=1_999)) == "warn:low_cash"
    assert decide(call(cost=10_001)) == "warn:big" and decide(call(cost=10_000)) == "allow:no_rule"


# ----- the denied step -----------------------------------------------------------------------------------------


def offer(episode: Episode) -> tuple[str, str, int, int]:
    """A supplier, SKU, unit price (cents) and minimum order the world sells today."""
    world = episode.world
    for supplier_id, sku_id in sorted(world.offers):
        terms = world.effective_offer(supplier_id, sku_id)
        if terms is not None:
            return supplier_id, sku_id, terms.unit_price_cents, terms.min_order
    raise AssertionError("no offer")


def big_order(episode: Episode) -> AgentAction:
    """An order the world would accept but that costs about 60% of the cash: the default gate denies it."""
    supplier_id, sku_id, price, _ = offer(episode)
    quantity = int(episode.state.cash_cents * 0.6 // price) + 1
    return AgentAction("order", {"supplier_id": supplier_id, "sku_id": sku_id, "quantity": quantity})


def test_a_denied_call_is_a_step_that_changes_nothing_but_the_clock() -> None:
    episode, twin = Episode(GATED, 7), Episode(GATED.model_copy(update={"gates": None}), 7)
    action = big_order(episode)
    assert episode.review(action).label == "deny:order_over_cash_share"  # review alone takes no step
    assert episode.state.step == 0
    denied = episode.step(action)
    waited = twin.step(AgentAction("wait"))  # the same clock, no action
    assert (denied.valid, denied.error_kind, denied.gate.label) == (False, DENIED, "deny:order_over_cash_share")
    assert denied.state_hash == waited.state_hash  # nothing executed; the step, shock and day end ran
    observation = denied.observation()
    assert observation["error"] == "denied" and observation["message"].startswith("order_over_cash_share: ")
    assert episode.trace.column("gate") == ["deny:order_over_cash_share"]
    assert episode.trace.column("error_kind") == ["denied"] and twin.trace.column("gate") == [None]
    checked = episode.step(AgentAction("check_budget"))
    assert checked.valid and checked.gate.label == "allow:no_rule" and "gate_warning" not in checked.observation()
    summary = episode.summary()
    assert (summary.gate_allowed, summary.gate_warned, summary.gate_denied) == (1, 0, 1)
    assert summary.gate_decisions == {"allow:no_rule": 1, "deny:order_over_cash_share": 1}
    assert twin.summary().gate_denied is None  # no gate: missing, not zero


def test_a_warned_call_runs_and_the_agent_reads_the_warning() -> None:
    episode = Episode(GATED, 7)
    supplier_id, sku_id, _, minimum = offer(episode)
    placed = episode.step(AgentAction("order", {"supplier_id": supplier_id, "sku_id": sku_id, "quantity": minimum}))
    assert placed.valid, placed.message
    warned = episode.step(AgentAction("expedite", {"po_id": placed.result["po_id"]}))
    assert warned.valid and warned.result["fee"] > 0 and warned.gate.label == "warn:expedite"
    assert warned.observation()["gate_warning"].startswith("expedite: ")


def test_the_streak_denies_actions_until_an_allowed_call() -> None:
    episode = Episode(GATED, 7)
    labels = [episode.step(big_order(episode)).gate.label for _ in range(5)]
    assert labels == ["deny:order_over_cash_share"] * 5
    assert episode.step(AgentAction("ship", {"order_id": "C-1"})).gate.label == "deny:denial_streak"
    assert episode.step(AgentAction("check_orders")).gate.label == "allow:no_rule"
    assert episode.step(big_order(episode)).gate.label == "deny:order_over_cash_share"  # the streak is over


# ----- how the detector reads a denied step ------------------------------------------------------------------------


def test_a_denial_is_not_an_invalid_action() -> None:
    facts = StepFacts(step=1, tool="order", action_key="order[]", valid=False, error_kind=DENIED, attempted=True,
                      progress=False, actionable=True, spend_cents=0, cash_cents=0, predicted_success=None,
                      predicted_cash_cents=None, belief_error=None, declared_stop=False)  # fmt: skip
    assert InvalidBurst(thresholds_for("moderate")).event(facts) is None


def run_with_denials(denials: int | None, start: int = 20) -> Episode:
    """The heuristic, which from `start` tries an order the gate denies: `denials` times, or for ever (None)."""
    episode = Episode(GATED, 11)
    agent = make_policy("heuristic", PolicyContext.for_condition(GATED), 11)
    observation, tries, denied = None, 0, None
    while not episode.done:
        if episode.state.step >= start and (denials is None or tries < denials):
            tries, denied = tries + 1, denied or big_order(episode)  # the same call each time
            observation = episode.step(denied).observation()
        else:
            observation = episode.step(*agent.act(observation)).observation()
    return episode


def test_a_few_denials_then_other_actions_are_no_crash_but_repeating_the_denied_call_is_looping() -> None:
    recovered = run_with_denials(4)
    assert recovered.crash is None and recovered.summary().gate_denied == 4
    stuck = run_with_denials(None)
    assert stuck.crash is not None and stuck.crash.crash_type == "looping"
    actionable = stuck.trace.column("actionable")
    assert stuck.crash.onset_step == next(t for t in range(21, 200) if actionable[t - 1])  # the first counted denial
    kinds = Counter(stuck.trace.column("error_kind"))
    assert kinds[DENIED] >= 10 and not [s for s in stuck.trace.signals if s["crash_type"] == "invalid_burst"]


# ----- through Inspect --------------------------------------------------------------------------------------------


def mock_call(function: str, arguments: dict[str, Any]) -> ModelOutput:
    output = ModelOutput.for_tool_call(MOCK, function, arguments)
    output.usage = ModelUsage(input_tokens=40, output_tokens=10, total_tokens=50)  # no tokenizer download
    return output


def test_inspect_approval_events_match_the_trace_and_the_summary(tmp_path: Path, no_network: list[Any]) -> None:
    task = vendomini(gates="default", complexity_level=2, p_shock=0.0, prediction_mode="none", max_steps=11,
                     replications=1)  # fmt: skip
    [sample] = task.dataset
    # The same calls straight on the core's Episode: the reference, and the ids the calls need.
    direct = Episode(Condition.model_validate(sample.metadata["condition"]), sample.metadata["seed"])
    supplier_id, sku_id, _, minimum = offer(direct)
    calls: list[tuple[str, dict[str, Any]]] = []

    def act(tool: str, arguments: dict[str, Any]) -> Any:
        calls.append((tool, arguments))
        return direct.step(AgentAction(tool, arguments))

    act("check_budget", {})
    act("order", dict(big_order(direct).arguments))
    po_id = act("order", {"supplier_id": supplier_id, "sku_id": sku_id, "quantity": minimum}).result["po_id"]
    act("expedite", {"po_id": po_id})
    for _ in range(5):
        act("order", dict(big_order(direct).arguments))
    act("ship", {"order_id": "C-1"})
    act("check_orders", {})
    expected = ["allow:no_rule", "deny:order_over_cash_share", "allow:no_rule", "warn:expedite",
                *["deny:order_over_cash_share"] * 5, "deny:denial_streak", "allow:no_rule"]  # fmt: skip
    assert direct.trace.column("gate") == expected

    outputs = [mock_call(tool, arguments) for tool, arguments in calls]
    [log] = eval(task, model=MOCK, model_args={"custom_outputs": outputs}, log_dir=str(tmp_path), display="none")
    log = read_eval_log(log.location)
    assert log.status == "success", log.error
    [logged] = log.samples or []
    record = EpisodeRecord(store=Store(logged.store))
    columns = record.trace["columns"]
    assert columns["gate"] == expected and columns["state_hash"] == direct.trace.column("state_hash")
    events = [e for e in logged.events if isinstance(e, ApprovalEvent)]
    assert [(e.call.function, e.explanation.split(":")[0]) for e in events] == [
        (tool, label.split(":")[1]) for (tool, _), label in zip(calls, expected, strict=True)
    ]
    assert [e.decision for e in events] == ["reject" if x.startswith("deny") else "approve" for x in expected]
    assert Counter(f"{e.metadata['gate']}:{e.metadata['reason']}" for e in events) == Counter(expected)
    summary = record.episode_summary()
    assert summary is not None and summary.gate_decisions == dict(Counter(expected))
    assert (summary.gate_allowed, summary.gate_warned, summary.gate_denied) == (3, 1, 7)
    # the agent read the reason of a denial in the tool result
    tool_results = [m for m in logged.messages if m.role == "tool"]
    assert tool_results[1].error is not None and tool_results[1].error.type == "approval"
    assert '"error":"denied"' in tool_results[1].error.message and "order_over_cash_share" in tool_results[1].text

    # The analysis: the run table's counts, the report's Gates section and GATES line, a thresholds bound.
    analysis = analyze(tmp_path, bootstrap_replicates=0)
    [run] = analysis.runs.to_dict("records")
    assert (run["gate_allowed"], run["gate_warned"], run["gate_denied"]) == (3, 1, 7)
    table = analysis.gates.set_index(["decision", "reason"])["calls"].to_dict()
    assert table == {("deny", "order_over_cash_share"): 6, ("deny", "denial_streak"): 1, ("warn", "expedite"): 1,
                     ("allow", "no_rule"): 3}  # fmt: skip
    line = ("GATES: 11 gated calls in 1 runs: 3 allowed, 1 warned, 7 denied (63.6%); denied by reason: "
            "order_over_cash_share 6, denial_streak 1")  # fmt: skip
    assert gates_line(analysis.runs) == line
    page = write_report(analysis, tmp_path / "report").read_text(encoding="utf-8")
    assert "<h3>Gates</h3>" in page and html.escape(line) in page
    for bound, status in ((0.5, "FAIL"), (0.7, "OK")):
        thresholds = Thresholds.model_validate({"checks": [{"name": "gate", "max_denied_share": bound}]})
        result = check_thresholds(thresholds, analysis.runs, analysis.loaded, "inline")
        assert result.status == status, result.line()
    assert "1 of 1 gated runs denied more than 0.5 of their gated calls (highest 0.636)" in check_thresholds(
        Thresholds.model_validate({"checks": [{"name": "gate", "max_denied_share": 0.5}]}), analysis.runs,
        analysis.loaded, "inline").line()  # fmt: skip


def test_vendomini_run_gates_every_condition_and_analyze_prints_the_gates_line(tmp_path: Path) -> None:
    """`vendomini run --gates default`: every task carries the gate (and its name says so), the logs hold the
    approval events, and `vendomini analyze` prints the GATES line before its BUDGET line. A bad policy is one
    line, nothing run."""
    bad = sweep_cli("run", "phase1", "--gates", "nope", "--log-dir", tmp_path / "bad")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--gates nope" in bad.stderr
    assert not (tmp_path / "bad").exists()
    run = sweep_cli("run", "phase1", "--model", "vendomini/heuristic", "--limit-conditions", "2", "--replications",
                    "1", "--max-steps", "40", "--gates", "default", "--log-dir", tmp_path / "logs",
                    timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    logs = [read_eval_log(str(path)) for path in sorted((tmp_path / "logs").rglob("*.eval"))]
    assert len(logs) == 2 and all(log.eval.task.endswith("__gates-default") for log in logs)
    for log in logs:
        [sample] = log.samples or []
        assert sample.metadata["condition"]["gates"] == "default"
        assert any(isinstance(e, ApprovalEvent) for e in sample.events)
    analyzed = sweep_cli("analyze", tmp_path / "logs", "--out", tmp_path / "report", "--bootstrap", "0", timeout=300)
    assert analyzed.returncode == 0, analyzed.stderr
    *_, gates, budget = analyzed.stdout.splitlines()
    assert gates.startswith("GATES: ") and budget.startswith("BUDGET: ")
