"""`vendomini run`: the grid as generic-task calls through eval_set, sharding, resume, the options passed to
Inspect, one sweep per log dir, and bad input.

The runs are real: the `vendomini` command in a subprocess, with the scripted models on a tiny grid (a YAML
that inherits the shipped base.yaml: 4 conditions, 30 steps, one replication). They check that every task
completes with the scores the direct runner gives, that two workers give the same samples and scores as one,
and that a sweep killed mid-run resumes without rerunning finished samples.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from inspect_ai.log import read_eval_log
from sweep_helpers import TINY, same_values, success_logs, vendomini

from vendomini_eval.cli import main
from vendomini_eval.condition import Condition
from vendomini_eval.experiments import expand_runs, load_experiment, shipped_configs_dir
from vendomini_eval.runner import run_policy
from vendomini_eval.scorers._values import business_values, survival_values
from vendomini_eval.sweep.plan import Shard, ShardJob, SweepError, parse_model_args, parse_models, plan_sweep
from vendomini_eval.sweep.run import check_log_dir_layout

MODELS = ("vendomini/heuristic", "vendomini/random")


def write_config(directory: Path, text: str, name: str = "tiny.yaml") -> Path:
    path = directory / name
    path.write_text(text.format(base=shipped_configs_dir() / "base.yaml"), encoding="utf-8")
    return path


def sample_scores(log_dir: Path) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(task, model, sample id) -> {scorer: value} over every successful log below log_dir."""
    scores = {}
    for path, header in success_logs(log_dir).items():
        log = read_eval_log(path)
        assert log.samples is not None
        for sample in log.samples:
            assert sample.scores is not None
            key = (header.eval.task, str(header.eval.model), str(sample.id))
            assert key not in scores, f"{key} logged twice"
            scores[key] = {name: score.value for name, score in sample.scores.items()}
    return scores


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_config(tmp_path_factory.mktemp("config"), TINY)


@pytest.fixture(scope="module")
def one_worker(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The tiny grid on both scripted models, one worker."""
    log_dir = tmp_path_factory.mktemp("one") / "logs"
    return log_dir, vendomini("run", tiny, "--log-dir", log_dir)


# ----- planning (no runs) -------------------------------------------------------------------------------


def test_plan_calls_the_generic_task_with_config_and_condition(tiny: Path) -> None:
    sweep = plan_sweep(tiny, workers=3)
    assert sweep.models == MODELS and sweep.replications == 1
    config = str(tiny.resolve())  # a file travels as its absolute path: shards may run elsewhere
    assert [c.task_args for c in sweep.conditions[:2]] == [
        {"config": config, "condition": 0},
        {"config": config, "condition": 1},
    ]
    assert sweep.conditions[3].task_name == "tiny_p_shock-0.6__prediction_mode-optional"
    # Round-robin: condition i goes to shard i mod 3, every shard has every model.
    shards = sweep.shards()
    assert [[c.index for c in shard.conditions] for shard in shards] == [[0, 3], [1], [2]]
    assert [Path(shard.log_dir).name for shard in shards] == ["shard-0-of-3", "shard-1-of-3", "shard-2-of-3"]
    assert all(shard.models == MODELS for shard in shards)
    # A shard is the unit a later backend ships as JSON.
    job = ShardJob(shard=shards[0], settings={"max_samples": 4})
    assert ShardJob.model_validate_json(job.model_dump_json()) == job


def test_plan_of_a_shipped_phase_passes_its_name_and_overrides_only() -> None:
    sweep = plan_sweep("phase3", max_steps=40, replications=2, limit_conditions=2, models="vendomini/heuristic")
    assert sweep.total_conditions == 66 and len(sweep.conditions) == 2
    assert sweep.conditions[1].task_args == {"config": "phase3", "condition": 1, "max_steps": 40, "replications": 2}
    assert plan_sweep("phase3", limit_conditions=1).conditions[0].task_args == {"config": "phase3", "condition": 0}


def test_the_planned_task_names_are_the_tasks_names(tiny: Path) -> None:
    """The plan names each task as the generic task does (resume and status match logs by that name)."""
    from vendomini_eval.tasks import vendomini as vendomini_task

    for condition in plan_sweep("phase2", max_steps=40).conditions[::9]:
        assert vendomini_task(**condition.task_args).name == condition.task_name
    for condition in plan_sweep(tiny).conditions:
        assert vendomini_task(**condition.task_args).name == condition.task_name


def test_dry_run_prints_shards_and_writes_nothing(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(tiny), "--dry-run", "--workers", "2", "--log-dir", str(tmp_path / "logs")]) == 0
    out = capsys.readouterr().out
    assert "tasks         8  (4 conditions x 2 models), 8 samples" in out
    assert f"shard-1-of-2: 2 conditions x 2 models = 4 tasks -> {tmp_path / 'logs'}/shard-1-of-2" in out
    models = "vendomini/heuristic,vendomini/random"
    assert f"inspect eval vendomini_eval/vendomini --model {models} -T config={tiny.resolve()} -T condition=3" in out
    assert not (tmp_path / "logs").exists()


def test_plan_and_dry_run_stay_inspect_free() -> None:
    """`vendomini plan` and `vendomini run --dry-run` never import Inspect (the runner's parent process of a
    sharded sweep neither: it plans the same way)."""
    code = (
        "import sys; from vendomini_eval.cli import main; main(['plan', 'phase1']); "
        "main(['run', 'phase3', '--dry-run', '--workers', '3']); "
        "assert not [m for m in sys.modules if m.startswith('inspect_ai')], 'inspect_ai was imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


# ----- real runs ----------------------------------------------------------------------------------------


def test_small_grid_completes_with_the_expected_scores(tiny: Path, one_worker: tuple[Path, Any]) -> None:
    log_dir, done = one_worker
    assert done.returncode == 0, done.stdout + done.stderr
    assert "tiny: 8/8 tasks in " in done.stdout
    assert f"inspect view --log-dir {log_dir}" in done.stdout

    sweep = plan_sweep(tiny, log_dir=log_dir)
    logs = success_logs(log_dir)
    assert sorted((h.eval.task, str(h.eval.model)) for h in logs.values()) == sorted(sweep.shards()[0].expected)
    args_by_task = {c.task_name: c.task_args for c in sweep.conditions}
    for header in logs.values():  # the task is the one `inspect eval vendomini_eval/vendomini -T ...` runs
        assert header.eval.task_args_passed == args_by_task[header.eval.task]
        assert header.results is not None and header.results.completed_samples == 1

    # Each sample runs the experiment's own condition and run seed (those `expand_runs` gives it).
    runs = {(r.condition.canonical_json(), r.seed) for r in expand_runs(load_experiment(tiny))}
    logged = set()
    for path in logs:
        for sample in read_eval_log(path).samples or []:
            logged.add(
                (Condition.model_validate(sample.metadata["condition"]).canonical_json(), sample.metadata["seed"])
            )
    assert logged == runs

    scores = sample_scores(log_dir)
    assert len(scores) == 8
    for path in logs:
        log = read_eval_log(path)
        for sample in log.samples or []:
            values = scores[(log.eval.task, str(log.eval.model), str(sample.id))]
            survival, business = values["survival"], values["business"]
            assert 1 <= survival["steps"] <= 30 and survival["time_to_crash"] <= survival["steps"]
            if str(log.eval.model) == "vendomini/heuristic":  # deterministic: the direct runner's numbers
                condition = Condition.model_validate(sample.metadata["condition"])
                summary = run_policy(condition, sample.metadata["seed"], "heuristic").summary
                assert survival == survival_values(summary)
                assert same_values(business, business_values(summary))


def test_rerunning_a_complete_sweep_runs_nothing(tiny: Path, one_worker: tuple[Path, Any]) -> None:
    log_dir, first = one_worker
    assert first.returncode == 0
    before = {p: (os.stat(p).st_mtime_ns, h.eval.eval_id) for p, h in success_logs(log_dir).items()}
    again = vendomini("run", tiny, "--log-dir", log_dir)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "tiny: 8/8 tasks in " in again.stdout
    after = {p: (os.stat(p).st_mtime_ns, h.eval.eval_id) for p, h in success_logs(log_dir).items()}
    assert after == before


@pytest.fixture(scope="module")
def killed_and_resumed(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The tiny grid with two workers, SIGTERMed once a task has finished, then rerun with the same command.

    Tasks run one at a time per shard (--max-tasks 1, which is not part of task identity), so at the kill some
    are finished and others running or queued."""
    log_dir = tmp_path_factory.mktemp("killed") / "logs"
    command = [sys.executable, "-m", "vendomini_eval.cli", "run", str(tiny), "--workers", "2", "--max-tasks", "1",
               "--log-dir", str(log_dir)]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while not success_logs(log_dir) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    finished = {p: (os.stat(p).st_mtime_ns, h.eval.eval_id) for p, h in success_logs(log_dir).items()}
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    return {"log_dir": log_dir, "killed": (process.returncode, out, err), "finished": finished, "rerun": rerun}


def test_a_killed_sweep_resumes_without_rerunning_finished_samples(
    tiny: Path, killed_and_resumed: dict[str, Any]
) -> None:
    log_dir, finished, rerun = (
        killed_and_resumed["log_dir"],
        killed_and_resumed["finished"],
        killed_and_resumed["rerun"],
    )
    returncode, out, err = killed_and_resumed["killed"]
    assert returncode == 128 + signal.SIGTERM, out + err
    # One truthful line: what the logs hold, and how to resume (no "Completed all tasks" from a stopped shard).
    assert f"interrupted by SIGTERM: {len(finished)}/8 tasks complete, {8 - len(finished)} not" in err
    assert "rerun the same command to resume" in err and "Completed all tasks" not in out + err
    pids = [int(line.split("(pid ")[1].split(")")[0]) for line in out.splitlines() if "(pid " in line]
    assert len(pids) == 2
    for pid in pids:  # the shard processes were stopped with the runner
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    grid = sorted(pair for shard in plan_sweep(tiny, workers=2).shards() for pair in shard.expected)
    assert 1 <= len(finished) < len(grid), "the kill should land mid-run"

    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "tiny: 8/8 tasks in " in rerun.stdout
    logs = success_logs(log_dir)
    for path, (mtime, eval_id) in finished.items():  # kept as they were: not rerun
        assert path in logs and os.stat(path).st_mtime_ns == mtime and logs[path].eval.eval_id == eval_id
    assert sorted((h.eval.task, str(h.eval.model)) for h in logs.values()) == grid  # each task exactly once
    assert all(h.results is not None and h.results.completed_samples == 1 for h in logs.values())
    assert sorted(p.name for p in log_dir.iterdir() if p.is_dir()) == ["shard-0-of-2", "shard-1-of-2"]


def test_two_workers_give_the_same_samples_and_scores(
    one_worker: tuple[Path, Any], killed_and_resumed: dict[str, Any]
) -> None:
    """The two-worker sweep is the killed-and-resumed one: it must equal the uninterrupted one-worker sweep."""
    assert one_worker[1].returncode == 0 and killed_and_resumed["rerun"].returncode == 0
    one, two = sample_scores(one_worker[0]), sample_scores(killed_and_resumed["log_dir"])
    assert one.keys() == two.keys() and len(one) == 8
    for key in one:
        assert same_values(one[key], two[key]), key


# ----- bad input ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "args", "message"),
    [
        ("fixed:\n  max_stepz: 3\n", (), "fixed.max_stepz: unknown condition key (did you mean max_steps?)"),
        ("modelz: [a/b]\n", (), "modelz: unknown experiment key"),
        ("", ("--model", "vendomini/heuristic,,vendomini/random"), "empty model name"),
        ("", ("--model", "heuristic"), "'heuristic' is not an Inspect model name (provider/model"),
        ("", ("--model", "vendomini/random,vendomini/random"), "vendomini/random given twice"),
        ("", ("--workers", "0"), "--workers must be an integer >= 1, got 0"),
        ("", ("--workers", "5"), "--workers 5 is more than the 4 conditions to run"),
        ("", ("--max-steps", "0"), "--max-steps must be an integer >= 1"),
        ("", ("--max-samples", "0"), "--max-samples must be >= 1, got 0"),
        ("", ("--token-limit", "0"), "--token-limit must be >= 1, got 0"),
        ("", ("--temperature", "-1"), "--temperature must be >= 0, got -1.0"),
        ("", ("-M", "fault"), "-M 'fault': expected key=value, or MODEL:key=value for one model"),
        ("", ("-M", "openai/gpt-4o:fault=looping"), "openai/gpt-4o is not a model of this sweep"),
        ("", ("--generate-config", "/nonexistent.yaml"), "--generate-config /nonexistent.yaml: cannot read it"),
        ("", ("--workers", "2", "--display", "full"), "display 'full' cannot be shared by 2 processes"),
        ("", ("--limit-conditions", "9"), "--limit-conditions 9: tiny has 4 conditions"),
    ],
)
def test_bad_input_gets_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], config: str, args: tuple[str, ...], message: str
) -> None:
    # The tiny grid with extra lines merged into its YAML (a second `fixed:` section replaces the first).
    text = TINY.replace("fixed:\n  max_steps: 30\n  pe_mag: high\n", "") + config
    path = write_config(tmp_path, text)
    assert main(["run", str(path), "--log-dir", str(tmp_path / "logs"), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "logs").exists()


def test_a_log_dir_of_another_layout_is_refused(tmp_path: Path) -> None:
    (tmp_path / "shard-0-of-3").mkdir()
    with pytest.raises(SweepError, match="holds a sweep run with --workers 3"):
        check_log_dir_layout(str(tmp_path), 2)
    check_log_dir_layout(str(tmp_path), 3)
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "2026-01-01T00-00-00_task_x.eval").write_bytes(b"")
    with pytest.raises(SweepError, match="--workers 1"):
        check_log_dir_layout(str(flat), 2)


def test_an_unknown_model_provider_fails_the_run_with_its_name(tiny: Path, tmp_path: Path) -> None:
    done = vendomini("run", tiny, "--model", "nosuchprovider/x", "--limit-conditions", "1", "--log-dir", tmp_path)
    assert done.returncode != 0
    assert "nosuchprovider" in done.stdout + done.stderr


def test_parse_models_strips_spaces() -> None:
    assert parse_models(" vendomini/heuristic , openai/gpt-4o") == ("vendomini/heuristic", "openai/gpt-4o")
    with pytest.raises(SweepError):
        parse_models([])
    assert (
        json.loads(Shard(experiment="tiny", models=MODELS, conditions=(), log_dir="x").model_dump_json())["count"] == 1
    )


def test_model_args_go_to_every_model_or_to_the_one_named() -> None:
    args = parse_model_args(["onset=30", "vendomini/heuristic:fault=looping", "ollama/llama3:8b:seed=7",
                             "url=http://h:1/v1?a=b"], ["vendomini/heuristic", "ollama/llama3:8b"])  # fmt: skip
    assert args == {
        "vendomini/heuristic": {"onset": 30, "fault": "looping", "url": "http://h:1/v1?a=b"},
        "ollama/llama3:8b": {"onset": 30, "seed": 7, "url": "http://h:1/v1?a=b"},
    }


# ----- every knob runs; options reach Inspect; one sweep per log dir ----------------------------------------


def test_a_grid_over_knobs_no_phase_varies_runs(tmp_path: Path) -> None:
    """Any condition knob can be an axis: the sweep runs it through the generic task."""
    axes = "  pressure_level: [low, high]\n  initial_cash: [150.0]\n"
    config = write_config(tmp_path, TINY.replace("  prediction_mode: [required, optional]\n", axes))
    done = vendomini("run", config, "--model", "vendomini/heuristic", "--log-dir", tmp_path / "logs")
    assert done.returncode == 0, done.stdout + done.stderr
    conditions = sorted(
        (s.metadata["condition"]["pressure_level"], s.metadata["condition"]["initial_cash"], s.metadata["seed"])
        for path in success_logs(tmp_path / "logs") for s in read_eval_log(path).samples or []
    )  # fmt: skip
    runs = sorted(
        (r.condition.pressure_level, r.condition.initial_cash, r.seed) for r in expand_runs(load_experiment(config))
    )
    assert conditions == runs and len(runs) == 4


def test_model_args_generation_and_limits_reach_inspect(tiny: Path, tmp_path: Path) -> None:
    done = vendomini("run", tiny, "--model", "vendomini/heuristic", "-M", "fault=looping", "-M", "onset=10",
                     "--token-limit", "200000", "--temperature", "0.7", "--max-tokens", "512", "--message-limit",
                     "5000", "--max-connections", "3", "--limit-conditions", "1", "--max-steps", "80",
                     "--log-dir", tmp_path / "logs")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (path, header), = success_logs(tmp_path / "logs").items()  # fmt: skip
    assert header.eval.model_args == {"fault": "looping", "onset": 10}
    assert header.eval.config.token_limit == 200000 and header.eval.config.message_limit == 5000
    assert header.plan.config.temperature == 0.7 and header.plan.config.max_tokens == 512
    assert header.plan.config.max_connections == 3
    sample = (read_eval_log(path).samples or [])[0]
    assert sample.scores is not None and sample.scores["crash_type"].value == "looping"  # the fault ran


def _started_pids(process: subprocess.Popen[str], count: int) -> list[int]:
    assert process.stdout is not None
    pids = []
    while len(pids) < count:
        line = process.stdout.readline()
        assert line, f"the sweep ended before {count} shards started"
        if "(pid " in line:
            pids.append(int(line.split("(pid ")[1].split(")")[0]))
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (ended, not yet reaped by its new parent) counts as ended
        return Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").split()[2] != "Z"
    except OSError:
        return False


def test_a_killed_coordinator_takes_its_shards_along_and_a_second_sweep_is_refused(tiny: Path, tmp_path: Path) -> None:
    log_dir = tmp_path / "logs"
    command = [sys.executable, "-m", "vendomini_eval.cli", "run", str(tiny), "--workers", "2", "--max-tasks", "1",
               "--max-steps", "150", "--log-dir", str(log_dir)]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        shard_pids = _started_pids(process, 2)
        second = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        assert second.returncode == 2, second.stdout + second.stderr
        assert f"{log_dir} is in use by a live sweep (pid {process.pid} on " in second.stderr
        deadline = time.monotonic() + 90
        while not success_logs(log_dir) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert success_logs(log_dir), "no task finished before the kill"
    finally:
        process.kill()
        process.communicate(timeout=30)
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in shard_pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in shard_pids if _alive(pid)], "shard processes outlived their coordinator by 10 s"

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=240, check=False)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    logs = success_logs(log_dir)
    grid = sorted(pair for shard in plan_sweep(tiny, workers=2).shards() for pair in shard.expected)
    assert sorted((h.eval.task, str(h.eval.model)) for h in logs.values()) == grid  # each task exactly once
    samples = [
        (h.eval.task, str(h.eval.model), str(s.id)) for p, h in logs.items() for s in read_eval_log(p).samples or []
    ]
    assert len(samples) == len(set(samples)) == len(grid)  # each sample exactly once
