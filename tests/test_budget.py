"""Sweep budgets: prices, ceilings, the shared ledger, and `vendomini run` stopping at a ceiling and resuming.

The sweeps run the scripted heuristic through `vendomini run` in a child process, one sample at a time
(`--max-samples 1 --max-tasks 1`), so that the ceiling falls inside the sweep: some samples finish, one is
running when the ceiling is reached, the rest have not started.
"""

from __future__ import annotations

import json
import multiprocessing
from collections import Counter
from pathlib import Path

import pytest
from inspect_ai.log import list_eval_logs, read_eval_log, read_eval_log_sample_summaries
from inspect_ai.model import ModelCost, ModelUsage, compute_model_cost
from sweep_helpers import TINY, vendomini

from vendomini_eval.budget import (
    FAIL_ON_BUDGET_EXIT,
    LEDGER_FILE,
    BudgetError,
    Ceilings,
    Ledger,
    Spend,
    budget_line,
    load_prices,
    reached,
)
from vendomini_eval.experiments import shipped_configs_dir
from vendomini_eval.sweep.budget import recorded_spend

SEQUENTIAL = ("--max-samples", "1", "--max-tasks", "1", "--model", "vendomini/heuristic", "--replications", "2")


def write_config(directory: Path) -> Path:
    path = directory / "tiny.yaml"
    path.write_text(TINY.format(base=shipped_configs_dir() / "base.yaml"), encoding="utf-8")
    return path


def samples(log_dir: Path) -> list[tuple[str, str, dict]]:
    """(log status, sample key, store) of every sample in every log below log_dir."""
    found = []
    for info in list_eval_logs(str(log_dir)):
        log = read_eval_log(info.name)
        for sample in log.samples or []:
            found.append((log.status, f"{log.eval.task}/{sample.id}/{sample.epoch}", sample))
    return found


# --- prices, ceilings and the line -------------------------------------------------------------------------


def test_a_prices_file_is_read_and_priced_as_inspect_prices_a_call(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text("openai/gpt-4o: {input: 2.5, output: 10, input_cache_read: 1.25}\nlocal/x: {input: 1, output: 2}\n")
    prices = load_prices(path)
    assert set(prices) == {"openai/gpt-4o", "local/x"}
    usage = ModelUsage(input_tokens=1000, output_tokens=300, total_tokens=1300, input_tokens_cache_read=5000,
                       input_tokens_cache_write=200)  # fmt: skip
    for price in prices.values():
        ours = price.cost(1000, 300, cache_read=5000, cache_write=200)
        assert ours == pytest.approx(compute_model_cost(ModelCost(**price.model_cost()), usage))
    # a cache price not given is the input price (no saving assumed)
    assert prices["local/x"].model_cost()["input_cache_read"] == 1.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "expected a mapping of model name to prices"),
        ("m: {input: 1}", "m.output: field required"),
        ("m: {input: -1, output: 1}", "m.input: input should be greater than or equal to 0"),
        ("m: {input: 1, output: 1, cached: 0.5}", "m.cached: extra inputs are not permitted"),
        ("m: {input: [1", "not YAML or JSON"),
    ],
)
def test_a_bad_prices_file_is_one_line_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(text)
    with pytest.raises(BudgetError) as error:
        load_prices(path)
    assert message in str(error.value) and "--prices" in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(BudgetError, match="cannot read"):
        load_prices(tmp_path / "missing.yaml")


def test_a_ceiling_is_reached_at_its_value_and_an_unknown_count_reaches_it() -> None:
    ceilings = Ceilings(max_total_tokens=1000, max_cost=2.0, max_calls=10)
    assert reached(ceilings, Spend(tokens=999, calls=9, cost=1.99)) is None
    assert reached(ceilings, Spend(tokens=1000, calls=0, cost=0.0)) == "max_total_tokens"
    assert reached(ceilings, Spend(tokens=0, calls=10, cost=0.0)) == "max_calls"
    assert reached(ceilings, Spend(tokens=0, calls=0, cost=2.0)) == "max_cost"
    # a ceiling that cannot be checked is not overrun
    assert reached(ceilings, Spend(tokens=None, calls=0, cost=0.0)) == "max_total_tokens"
    assert reached(Ceilings(max_cost=1.0), Spend(cost=None)) == "max_cost"
    assert reached(Ceilings(max_calls=5), Spend(tokens=None, cost=None, calls=4)) is None
    assert reached(Ceilings(), Spend(tokens=10**12, calls=10**9)) is None


def test_the_budget_line_shows_every_count_and_each_ceiling_used() -> None:
    spend = Spend(tokens=1500, calls=30, cost=None, input_tokens=1200, output_tokens=300, cache_read_tokens=800,
                  runs=3)  # fmt: skip
    line = budget_line(spend, Ceilings(max_total_tokens=2000, max_calls=30), hit="max_calls")
    assert line == (
        "BUDGET: 3 runs, 1,500 tokens (1,200 in, 800 cached, 300 out), 30 calls, cost unknown; "
        "ceilings: max_total_tokens 2,000 (75% used), max_calls 30 (100% used); REACHED max_calls"
    )
    assert budget_line(Spend(cost=1.234, runs=1)).endswith("cost $1.23; ceilings: none")


def _add_calls(path: str, n: int) -> None:
    ledger = Ledger(path)
    for _ in range(n):
        ledger.add(tokens=3, cost=0.5)
    ledger.close()


def test_the_ledger_sums_the_calls_of_every_process(tmp_path: Path) -> None:
    path = tmp_path / LEDGER_FILE
    Ledger.start(path, Spend(tokens=100, calls=1, cost=1.0), Ceilings(max_calls=10_000)).close()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_add_calls, args=(str(path), 200)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    ledger = Ledger(path)
    spend = ledger.read()
    assert (spend.tokens, spend.calls, spend.cost) == (100 + 3 * 600, 601, pytest.approx(301.0))
    assert ledger.ceilings == Ceilings(max_calls=10_000)  # what `vendomini analyze` reports
    ledger.add(tokens=None, cost=None)
    assert ledger.read().tokens is None and ledger.read().cost is None  # unknown stays unknown


# --- a sweep at its ceiling ---------------------------------------------------------------------------------


def test_a_token_ceiling_stops_the_sweep_and_a_rerun_with_a_higher_one_finishes_it(tmp_path: Path) -> None:
    config, logs = write_config(tmp_path), tmp_path / "logs"
    expected = 4 * 2  # conditions x replications
    # the tokens of about three of the eight runs: the fourth is running when the ceiling is reached
    probe = vendomini("run", config, *SEQUENTIAL, "--limit-conditions", "1", "--replications", "1", "--log-dir",
                      tmp_path / "probe")  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    one_run = recorded_spend(tmp_path / "probe").tokens
    ceiling = int(3.5 * one_run)

    stopped = vendomini("run", config, *SEQUENTIAL, "--log-dir", logs, "--max-total-tokens", ceiling,
                        "--fail-on-budget")  # fmt: skip
    assert stopped.returncode == FAIL_ON_BUDGET_EXIT, stopped.stdout + stopped.stderr
    budget = stopped.stdout.strip().splitlines()[-1]
    assert budget.startswith("BUDGET: ") and budget.endswith("REACHED max_total_tokens"), budget
    assert f"max_total_tokens {ceiling:,} (" in budget
    assert "STOPPED at the sweep ceiling max_total_tokens" in stopped.stdout
    assert "Traceback" not in stopped.stdout + stopped.stderr

    found = samples(logs)
    ran = [(key, s) for _, key, s in found if s.error is None]
    outcomes = Counter(s.store["EpisodeRecord:outcome"] for _, s in ran)
    # Three runs finished, the fourth ended as truncated (never a crash); no other sample made a call.
    assert outcomes == Counter({"censored": 3, "limit": 1}), outcomes
    [limited] = [s for _, s in ran if s.store["EpisodeRecord:outcome"] == "limit"]
    assert limited.store["EpisodeRecord:limit"] == "budget" and limited.scores  # scored as it stands
    refused = [s for _, _, s in found if s.error is not None]
    assert refused and all("sweep budget reached: max_total_tokens" in s.error.message for s in refused)
    assert all(not s.model_usage for s in refused)  # never called the model
    spend = recorded_spend(logs)
    assert ceiling <= spend.tokens < ceiling + one_run  # stopped within one call of its ceiling
    ledger = json.loads((logs / LEDGER_FILE).read_text())
    assert ledger["tokens"] >= ceiling

    # The same ceiling again: exit 0 without --fail-on-budget, nothing new runs.
    again = vendomini("run", config, *SEQUENTIAL, "--log-dir", logs, "--max-total-tokens", ceiling)
    assert again.returncode == 0, again.stdout + again.stderr
    assert recorded_spend(logs).tokens == spend.tokens

    # A higher ceiling resumes and finishes every sample once; the truncated run is kept, not run again.
    resumed = vendomini("run", config, *SEQUENTIAL, "--log-dir", logs, "--max-total-tokens", 100 * one_run)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "4/4 tasks" in resumed.stdout and "REACHED" not in resumed.stdout
    finished = [(key, s) for status, key, s in samples(logs) if status == "success"]
    assert sorted(Counter(key for key, _ in finished).values()) == [1] * expected
    assert Counter(s.store["EpisodeRecord:outcome"] for _, s in finished) == Counter({"censored": 7, "limit": 1})
    analyzed = vendomini("analyze", logs, "--out", tmp_path / "report", "--bootstrap", "0", timeout=300)
    assert analyzed.returncode == 0, analyzed.stderr
    assert f"{expected} runs from" in analyzed.stdout
    line = analyzed.stdout.strip().splitlines()[-1]
    assert line.startswith(f"BUDGET: {expected} runs, ") and f"max_total_tokens {100 * one_run:,}" in line
    page = (tmp_path / "report" / "index.html").read_text()
    assert "1 runs cut short by a limit (budget 1; right-censored where they stopped)" in page


def test_a_call_ceiling_ends_running_samples_as_truncated_and_counts_each_call(tmp_path: Path) -> None:
    config, logs = write_config(tmp_path), tmp_path / "logs"
    # All four tasks at once (Inspect's defaults): every sample is running when the ceiling is reached.
    result = vendomini("run", config, "--model", "vendomini/heuristic", "--log-dir", logs, "--max-calls", 50)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "the sweep ceiling max_calls was reached" in result.stdout
    summaries = [s for info in list_eval_logs(str(logs)) for s in read_eval_log_sample_summaries(info.name)]
    calls = sum(s.turn_count for s in summaries)
    running = len(summaries)
    assert 50 <= calls < 50 + running  # each running sample makes at most one call past the ceiling
    stores = [s.store for _, _, s in samples(logs)]
    assert {s["EpisodeRecord:outcome"] for s in stores} == {"limit"}
    assert all(s["EpisodeRecord:summary"]["crashed"] is False for s in stores)
    assert recorded_spend(logs).calls == calls


def test_a_cost_ceiling_needs_every_models_price(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = vendomini("run", config, "--model", "vendomini/heuristic", "--max-cost", "1", "--log-dir", tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().endswith("--max-cost: no price for vendomini/heuristic; give each one in "
                                          "--prices FILE")  # fmt: skip
    bad = vendomini("run", config, "--max-calls", "0", "--log-dir", tmp_path / "x")
    assert bad.returncode == 2 and "--max-calls must be > 0, got 0" in bad.stderr


def test_a_shard_without_a_coordinator_keeps_its_own_ledger_as_a_slurm_array_task_does(tmp_path: Path) -> None:
    """A SLURM array task runs its shard with no sweep ledger: the shard starts one in its own log dir, from its
    own logs, and exits 0 when its ceiling stops it (FAIL_ON_BUDGET_EXIT with fail_on_budget)."""
    import subprocess
    import sys

    from vendomini_eval.sweep.plan import EvalSettings, ShardJob, plan_sweep

    sweep = plan_sweep(write_config(tmp_path), models="vendomini/heuristic", log_dir=tmp_path / "shard",
                       replications=2)  # fmt: skip
    [shard] = sweep.shards()
    for fail, status in ((False, 0), (True, FAIL_ON_BUDGET_EXIT)):
        settings = EvalSettings(ceilings=Ceilings(max_calls=70), max_samples=1, max_tasks=1, fail_on_budget=fail)
        job = ShardJob(shard=shard, settings=settings)
        result = subprocess.run([sys.executable, "-m", "vendomini_eval.sweep.shard", "--spec", "-"],
                                input=job.model_dump_json(), capture_output=True, text=True, timeout=300)  # fmt: skip
        assert result.returncode == status, result.stdout + result.stderr
        assert "sweep budget reached: max_calls" in result.stdout
    ledger = json.loads((tmp_path / "shard" / LEDGER_FILE).read_text())
    assert ledger["ceilings"]["max_calls"] == 70 and ledger["calls"] >= 70
    assert recorded_spend(tmp_path / "shard").calls == ledger["calls"]
