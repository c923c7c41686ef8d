"""The vending world behind the common step function and as the Inspect task `vendomini_eval/vending_bench`:
the condition knobs that pick it (and leave every warehouse seed as it was), determinism and common random numbers
through the Episode, the task run offline with its Vending-Bench scores, and bad task arguments."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from inspect_ai.log import list_eval_logs, read_eval_log
from pydantic import ValidationError

from vendomini_eval.analysis import AnalysisInputError, analyze
from vendomini_eval.condition import Condition
from vendomini_eval.episode import AgentAction, Episode, gate_policy
from vendomini_eval.experiments import condition_for, derive_run_seed, load_experiment
from vendomini_eval.gates import GatePolicyError
from vendomini_eval.policies import PolicyContext, make_policy
from vendomini_eval.results import EpisodeSummary
from vendomini_eval.runner import run_policy
from vendomini_eval.vending import demand

REPO = Path(__file__).resolve().parents[1]
SHOCKED = Condition(world="vending", p_shock=0.3, prediction_mode="required", max_days=40, max_steps=3000)


def test_the_default_world_leaves_the_canonical_condition_and_its_seeds_as_they_were() -> None:
    assert "world" not in Condition().canonical_json()
    assert '"world":"vending"' in Condition(world="vending").canonical_json()
    assert derive_run_seed(1, Condition(), 0) != derive_run_seed(1, Condition(world="vending"), 0)


@pytest.mark.parametrize(
    ("knob", "value"),
    [("complexity_level", 2), ("steps_per_day", 3), ("pressure_level", "high"), ("recovery_tools", "all")],
)
def test_a_warehouse_knob_is_refused_in_the_vending_world(knob: str, value: object) -> None:
    with pytest.raises(ValidationError, match=f"{knob} is a warehouse knob"):
        Condition(world="vending", **{knob: value})


def test_max_days_ends_a_run_in_either_world_as_censored() -> None:
    for condition in (Condition(max_days=4, p_shock=0.0), Condition(world="vending", max_days=4, p_shock=0.0)):
        summary = run_policy(condition, 3).summary
        assert (summary.days, summary.truncated, summary.crashed) == (4, True, False)


def test_the_same_seed_gives_the_same_run_and_other_policies_meet_the_same_world() -> None:
    first, second = run_policy(SHOCKED, 11), run_policy(SHOCKED, 11)
    assert first.state_hashes == second.state_hashes
    assert first.summary == second.summary
    faulty = run_policy(SHOCKED, 11, fault="stall", onset=60)
    # Common random numbers: the same shock schedule, and every day both runs ended had the same weather.
    assert first.episode.schedule.listing() == faulty.episode.schedule.listing()
    assert first.episode.schedule.listing()  # the schedule is not empty at p_shock 0.3
    days = min(first.summary.days, faulty.summary.days)
    assert days > 5
    for day in range(days):
        assert _weather(first.episode, day) == _weather(faulty.episode, day)


def _weather(episode: Episode, day: int) -> str:
    """The day's weather as the world draws it: from the run seed and the day alone."""
    return demand.day_draws(episode.seed, day, len(episode.world.products)).weather


def test_a_shock_changes_the_world_and_its_delivery_prediction_resolves_on_arrival() -> None:
    condition = Condition(world="vending", p_shock=0.0, prediction_mode="required", prediction_format="structured")
    episode = Episode(condition, 5)
    catalogue = episode.step(AgentAction("list_suppliers"), {"expected_success": True}).result
    supplier = catalogue["suppliers"][0]
    product_id, price = next(iter(supplier["unit_prices_cents"].items()))
    quantity = supplier["min_order_units"]
    card = {"expected_success": True, "expected_cost": price * quantity / 100,
            "expected_delivery_day": supplier["lead_days"], "expected_quantity": quantity}  # fmt: skip
    placed = episode.step(AgentAction("order", {"supplier_id": supplier["supplier_id"], "product_id": product_id,
                                                "quantity": quantity}), card)  # fmt: skip
    assert placed.valid, placed.message
    resolved = []
    while not any(o.field == "expected_delivery_day" for o in resolved):
        step = episode.step(AgentAction("end_day"), {"expected_success": True, "expected_revenue": 0,
                                                     "expected_units_sold": 0})  # fmt: skip
        resolved += step.pe
    by_field = {o.field: o for o in resolved}
    assert by_field["expected_delivery_day"].value == 0.0  # no shock: it came on the stated day
    assert by_field["expected_quantity"].actual == quantity


def inspect_eval(*args: str, log_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "inspect"), "eval", *args, "--model", "vendomini/heuristic", "--log-dir",
         str(log_dir), "--display", "plain"],
        capture_output=True, text=True, timeout=300, check=False, cwd=REPO, env={**os.environ, "COLUMNS": "400"},
    )  # fmt: skip


def test_the_task_runs_offline_and_scores_net_worth_like_vending_bench(tmp_path: Path) -> None:
    done = inspect_eval("tasks/vending_bench.py", "-T", "days=30", "-T", "replications=5", log_dir=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    (info,) = list_eval_logs(str(tmp_path))
    log = read_eval_log(info.name)
    assert log.eval.task_args["days"] == 30
    summaries = [EpisodeSummary.model_validate(s.store["EpisodeRecord:summary"]) for s in log.samples]
    assert len(summaries) == 5 and all(s.world == "vending" and s.days == 30 for s in summaries)
    assert all(s.net_worth > 500 for s in summaries)  # the heuristic is profitable at day 30
    scores = [s.scores["vending_bench"].value for s in log.samples]
    assert [v["net_worth"] for v in scores] == [s.net_worth for s in summaries]
    assert [v["units_sold"] for v in scores] == [s.vending.units_sold for s in summaries]
    metrics = {m.name: m.value for m in next(r for r in log.results.scores if r.name == "net_worth"
                                                and r.scorer == "vending_bench").metrics.values()}  # fmt: skip
    worth = [s.net_worth for s in summaries]
    assert metrics["mean"] == pytest.approx(sum(worth) / 5)
    assert min(worth) in metrics.values() and max(worth) in metrics.values()
    # The config's defaults are Vending-Bench's: no shocks, no cards, every memory tool.
    condition = log.eval.metadata["condition"]
    assert (condition["p_shock"], condition["prediction_mode"], condition["memory_tools"]) == (0.0, "none", "full")


def test_a_warehouse_knob_stops_the_task_with_one_line(tmp_path: Path) -> None:
    done = inspect_eval("tasks/vending_bench.py", "-T", "complexity_level=2", log_dir=tmp_path)
    assert done.returncode != 0
    assert "complexity_level is a warehouse knob" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert not list_eval_logs(str(tmp_path))


def test_the_config_runs_its_grid_through_vendomini_run(tmp_path: Path) -> None:
    experiment = load_experiment("vending_bench")
    assert len(experiment.conditions) == 4
    assert condition_for(experiment, {}).world == "vending"
    vendomini = str(Path(sys.executable).parent / "vendomini")
    run = subprocess.run([vendomini, "run", "vending_bench", "--model", "vendomini/heuristic", "--replications", "1",
                          "--max-steps", "40", "--log-dir", str(tmp_path / "logs")],
                         capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    out = tmp_path / "report"
    report = subprocess.run([vendomini, "analyze", str(tmp_path / "logs"), "--out", str(out)],
                            capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert report.returncode == 0, report.stdout[-2000:] + report.stderr[-2000:]
    table = (out / "vending_bench.csv").read_text().splitlines()
    assert len(table) == 1 + 4  # a row per condition of the grid
    assert "<h2>Vending-Bench</h2>" in (out / "index.html").read_text()
    # The grid's two axes are its factors: no column of the run (days run, world) passes for one.
    assert analyze(tmp_path / "logs").factors == ["p_shock", "prediction_mode"]


def test_two_conditions_under_one_task_name_stop_the_analysis_instead_of_replacing_each_other(tmp_path: Path) -> None:
    """`-T days=` is not a grid axis: two evals that differ only in it share the task's name and sample ids, and
    the analysis must not take the second for a retry of the first."""
    for days in (2, 3):
        done = inspect_eval("tasks/vending_bench.py", "-T", f"days={days}", "-T", "replications=1", log_dir=tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
    with pytest.raises(AnalysisInputError, match=r"ran two conditions under one name \(max_days: 2 vs 3\)"):
        analyze(tmp_path)


def test_the_vending_gate_policy_prices_orders_in_this_world_and_the_warehouse_one_is_refused() -> None:
    assert gate_policy(Condition(world="vending", gates="vending")).name == "vending"
    with pytest.raises(GatePolicyError, match="unknown tool 'ship'"):
        gate_policy(Condition(world="vending", gates="default"))
    episode = Episode(Condition(world="vending", gates="vending", prediction_mode="none", p_shock=0.0), 5)
    catalogue = episode.step(AgentAction("list_suppliers")).result
    supplier = catalogue["suppliers"][0]
    product_id, price = next(iter(supplier["unit_prices_cents"].items()))
    # 70% of the $500 start at the list price: above half of the cash even after a bulk discount (at most 15%)
    big = AgentAction("order", {"supplier_id": supplier["supplier_id"], "product_id": product_id,
                                "quantity": 35_000 // price})  # fmt: skip
    denied = episode.step(big)
    assert (denied.valid, denied.error_kind, denied.gate.reason) == (False, "denied", "order_over_cash_share")
    assert episode.state.cash_cents == 50_000 and not episode.state.orders  # not executed
    small = AgentAction("order", {**big.arguments, "quantity": max(5_000 // price, supplier["min_order_units"])})
    assert episode.step(small).valid


@pytest.mark.parametrize(("seed", "fault"), [(2, None), (3, "stall"), (4, "looping")])
def test_the_cards_content_never_decides_the_crash_in_this_world(seed: int, fault: str | None) -> None:
    """Each call played twice in lockstep: once with the policy's own card, once with a card that states the
    opposite (failure expected, confidence flipped, every number wildly wrong but valid). The world and the primary
    endpoint are the same; only the PE differs."""
    condition = SHOCKED.model_copy(update={"prediction_mode": "required+confidence"})
    policy = make_policy("heuristic", PolicyContext.for_condition(condition), seed, fault=fault,
                         onset=60 if fault else None)  # fmt: skip
    honest, contrary = Episode(condition, seed), Episode(condition, seed)
    observation = None
    while not honest.done:
        action, card = policy.act(observation)
        observation = honest.step(action, card).observation()
        contrary.step(action, {k: _opposite(k, v) for k, v in card.items()})
    assert honest.state.state_hash() == contrary.state.state_hash()
    ours, theirs = honest.summary(), contrary.summary()
    assert (theirs.crashed, theirs.crash_type, theirs.time_to_crash) == (ours.crashed, ours.crash_type,
                                                                         ours.time_to_crash)  # fmt: skip
    assert fault is None or ours.crashed  # the faults do crash: not a comparison of two quiet runs
    assert theirs.pe.combined.sum > ours.pe.combined.sum


def _opposite(name: str, value: object) -> object:
    if isinstance(value, bool):
        return not value
    if name == "confidence":
        return 1 - value
    if isinstance(value, str):
        return value
    return 999_999
