"""`vendomini run --backend ray`: the shards as Ray tasks on a Ray cluster, checked against the local backend.

The test owns a local Ray cluster with 2 CPUs: a helper process starts it (`ray.init(num_cpus=2)`) on the
loopback address with the dashboard, usage stats and token auth off, prints its address, and shuts it down when
the test closes its stdin (killed by pid if it does not). The `vendomini` command joins it as a second driver
with `--address`, as on a real cluster. The tiny grid (4 conditions x 2 scripted models) runs with two shards
on Ray and on local processes; both must give the same samples, scores and per-step state hashes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from inspect_ai.log import list_eval_logs, read_eval_log
from sweep_helpers import TINY, same_values, vendomini

from vendomini_eval.cli import main
from vendomini_eval.experiments import shipped_configs_dir
from vendomini_eval.sweep.plan import plan_sweep

RAY_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # Ray's single-machine mode: every address is the loopback one
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",  # no token written to the home directory for a cluster that lives one test
}
CLUSTER = """\
import sys, ray
context = ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20, _temp_dir=sys.argv[1])
print(context.address_info["address"], flush=True)
sys.stdin.read()  # until the test closes stdin
ray.shutdown()
"""
RunKey = tuple[str, str, str]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("config") / "tiny.yaml"
    path.write_text(TINY.format(base=shipped_configs_dir() / "base.yaml"), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def ray_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A local Ray cluster with 2 CPUs, owned by this test module; its GCS address."""
    temp_dir = tmp_path_factory.mktemp("ray")
    helper = subprocess.Popen(
        [sys.executable, "-c", CLUSTER, str(temp_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **RAY_ENV},
    )
    try:
        assert helper.stdout is not None
        address = helper.stdout.readline().strip()
        assert address.startswith("127.0.0.1:"), f"the Ray cluster did not start (address line {address!r})"
        yield address
    finally:
        assert helper.stdin is not None
        helper.stdin.close()
        try:
            helper.wait(timeout=60)
        except subprocess.TimeoutExpired:
            helper.kill()
            helper.wait()


def logged_runs(log_dir: Path) -> dict[RunKey, dict[str, Any]]:
    """(task, model, sample id) -> the sample's scores and per-step state hashes, over every successful log."""
    runs: dict[RunKey, dict[str, Any]] = {}
    for info in list_eval_logs(str(log_dir)):
        log = read_eval_log(info.name)
        if log.status != "success":
            continue
        for sample in log.samples or []:
            key = (log.eval.task, str(log.eval.model), str(sample.id))
            assert key not in runs, f"{key} logged twice"
            assert sample.scores is not None
            runs[key] = {
                "scores": {name: score.value for name, score in sample.scores.items()},
                "state_hash": sample.store["EpisodeRecord:trace"]["columns"]["state_hash"],
            }
    return runs


@pytest.mark.ray
def test_ray_backend_gives_the_same_samples_scores_and_traces_as_local(
    tiny: Path, ray_address: str, tmp_path: Path
) -> None:
    on_ray = vendomini("run", tiny, "--backend", "ray", "--address", ray_address, "--workers", "2",
                       "--log-dir", tmp_path / "ray", timeout=300, env=RAY_ENV)  # fmt: skip
    assert on_ray.returncode == 0, on_ray.stdout + on_ray.stderr
    assert "[shard-0-of-2] submitted to Ray: 4 tasks" in on_ray.stdout
    assert "shard-1-of-2: 4/4 tasks complete, exit 0 [ok]" in on_ray.stdout
    assert "tiny: 8/8 tasks in " in on_ray.stdout
    local = vendomini("run", tiny, "--workers", "2", "--log-dir", tmp_path / "local", timeout=300, env=RAY_ENV)
    assert local.returncode == 0, local.stdout + local.stderr

    ray_runs, local_runs = logged_runs(tmp_path / "ray"), logged_runs(tmp_path / "local")
    expected = {pair for shard in plan_sweep(tiny, workers=2).shards() for pair in shard.expected}
    assert {(task, model) for task, model, _ in ray_runs} == expected and len(ray_runs) == 8
    assert ray_runs.keys() == local_runs.keys()
    for key, run in ray_runs.items():
        assert same_values(run["scores"], local_runs[key]["scores"]), key
        assert run["state_hash"] == local_runs[key]["state_hash"], key
        assert len(run["state_hash"]) == run["scores"]["survival"]["steps"] >= 1
    assert sorted(p.name for p in (tmp_path / "ray").iterdir() if p.is_dir()) == ["shard-0-of-2", "shard-1-of-2"]


@pytest.mark.ray
def test_an_interrupted_ray_sweep_stops_its_shards_and_resumes(tiny: Path, ray_address: str, tmp_path: Path) -> None:
    """SIGTERM once a task has finished: the Ray tasks stop their shard processes, and the same command then
    finishes only what is missing."""
    log_dir = tmp_path / "logs"
    command = [sys.executable, "-m", "vendomini_eval.cli", "run", str(tiny), "--backend", "ray", "--address",
               ray_address, "--workers", "2", "--max-tasks", "1", "--log-dir", str(log_dir)]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **RAY_ENV}
    )
    deadline = time.monotonic() + 120
    while not _successes(log_dir) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, out + err
    assert "rerun the same command to resume" in err
    finished = _successes(log_dir)
    assert 1 <= len(finished) < 8, "the signal should land mid-run"
    # Ray forwards the tasks' output: each names the shard process it started.
    pids = [int(line.split("(pid ")[1].split(")")[0]) for line in (out + err).splitlines() if "] started (pid" in line]
    assert len(pids) == 2, out + err
    for pid in pids:  # the shard processes the Ray tasks started are gone
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False,
                           env={**os.environ, **RAY_ENV})  # fmt: skip
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "tiny: 8/8 tasks in " in rerun.stdout
    after = _successes(log_dir)
    assert {path: after[path] for path in finished} == finished  # finished tasks were not rerun
    assert len(after) == 8


def _successes(log_dir: Path) -> dict[str, str]:
    """Successful logs below log_dir: path -> eval id."""
    found = {}
    for info in list_eval_logs(str(log_dir)) if log_dir.exists() else []:
        try:
            header = read_eval_log(info.name, header_only=True)
        except Exception:  # a log being written
            continue
        if header.status == "success":
            found[info.name] = header.eval.eval_id
    return found


def test_ray_backend_without_ray_names_the_extra(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError, as without the extra
    assert main(["run", str(tiny), "--backend", "ray", "--log-dir", str(tmp_path / "logs")]) == 2
    assert "pip install 'vendomini-eval[ray]'" in capsys.readouterr().err
    assert not (tmp_path / "logs").exists()


def test_address_goes_with_the_ray_backend(tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(tiny), "--address", "auto", "--log-dir", str(tmp_path / "logs")]) == 2
    assert "--address is the Ray cluster's address: it goes with --backend ray" in capsys.readouterr().err
