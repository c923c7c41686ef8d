"""`vendomini slurm`: planning, the array task's model-server wiring, and real array jobs on a real SLURM.

The array task script runs here directly (SLURM_ARRAY_TASK_ID set) with the OpenAI-compatible fixture server
of test_openai_server.py launched in place of `vllm serve`, through Inspect's vllm/ and openai-api/ providers.
The tests marked `slurm` start a single-node cluster (munged, slurmctld, slurmd from Debian's slurm-wlm, as
processes of their own with a generated configuration in a temp dir) and submit through `vendomini slurm
submit` with the scripted models (and, with the local-llm extra, SmolLM2 served by llama.cpp on the node); without
those binaries they skip, except in CI, where they fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from inspect_ai.log import list_eval_logs, read_eval_log
from sweep_helpers import success_logs, texts_below, vendomini

from vendomini_eval.experiments import shipped_configs_dir
from vendomini_eval.sweep.shard import collect_status
from vendomini_eval.sweep.slurm import SlurmPlan, array_spec, manifest_text, plan_slurm, read_manifests, write_files

TESTS = Path(__file__).resolve().parent
SCRIPTED = ("vendomini/heuristic", "vendomini/random")
SMALL = """\
name: small
inherit: {base}
replications: {replications}
fixed:
  max_steps: {max_steps}
  pe_mag: high
grid:
  p_shock: [0.0, 0.6]
  prediction_mode: [required, optional]
"""


def write_config(directory: Path, *, replications: int = 1, max_steps: int = 20) -> Path:
    path = directory / "small.yaml"
    text = SMALL.format(base=shipped_configs_dir() / "base.yaml", replications=replications, max_steps=max_steps)
    path.write_text(text, encoding="utf-8")
    return path


def sample_keys(log_dir: Path) -> list[tuple[str, str, Any, int]]:
    """(task, model, sample id, epoch) of every sample of every successful log below log_dir."""
    keys = []
    for path in success_logs(log_dir):
        log = read_eval_log(path)
        assert log.samples is not None
        for sample in log.samples:
            assert sample.error is None, sample.error
            keys.append((log.eval.task, str(log.eval.model), sample.id, sample.epoch))
    return keys


def partial_samples(log_dir: Path) -> dict[tuple[str, str, Any, int], str]:
    """The finished samples (key -> uuid) written so far to the logs below log_dir that are not successful."""
    samples = {}
    for info in list_eval_logs(str(log_dir)):
        try:
            log = read_eval_log(info.name)
        except Exception:  # being written
            continue
        if log.status != "success":
            for sample in log.samples or []:
                samples[(log.eval.task, str(log.eval.model), sample.id, sample.epoch)] = sample.uuid
    return samples


def sample_uuids(log_dir: Path) -> dict[tuple[str, str, Any, int], str]:
    """key -> uuid of every sample of the successful logs below log_dir."""
    uuids = {}
    for path in success_logs(log_dir):
        log = read_eval_log(path)
        for sample in log.samples or []:
            uuids[(log.eval.task, str(log.eval.model), sample.id, sample.epoch)] = sample.uuid
    return uuids


# ----- planning ----------------------------------------------------------------------------------------


def test_each_array_task_is_one_model_and_a_round_robin_share_of_the_conditions(tmp_path: Path) -> None:
    plan = plan_slurm(write_config(tmp_path), models=list(SCRIPTED), log_dir=tmp_path / "logs", shards=2)
    assert [(t.index, t.model, t.job.shard.index) for t in plan.tasks] == [
        (0, SCRIPTED[0], 0), (1, SCRIPTED[0], 1), (2, SCRIPTED[1], 0), (3, SCRIPTED[1], 1),
    ]  # fmt: skip
    conditions = [c.task_name for c in plan.sweep.conditions]
    for model in SCRIPTED:
        shards = [t.job.shard for t in plan.tasks if t.model == model]
        assert [c.task_name for c in shards[0].conditions] == conditions[0::2]
        assert [c.task_name for c in shards[1].conditions] == conditions[1::2]
        assert all(shard.models == (model,) for shard in shards)
    log_dirs = [t.job.shard.log_dir for t in plan.tasks]
    assert len(set(log_dirs)) == 4  # eval_set refuses a dir shared by concurrent array tasks
    assert log_dirs[0] == str((tmp_path / "logs" / "vendomini--heuristic" / "shard-0-of-2").resolve())
    assert all(t.serve is None and t.job.settings.max_connections is None for t in plan.tasks)  # scripted: direct
    assert plan.resources.gpus_per_task == 0 and plan.resources.cpus_per_task == 1
    lines = manifest_text(plan).splitlines()
    assert len(lines) == 4 and json.loads(lines[3])["job"]["shard"]["log_dir"] == log_dirs[3]


def test_served_models_get_a_server_tensor_parallelism_and_concurrent_requests(tmp_path: Path) -> None:
    models = ["vllm/Qwen/Qwen3-32B", "openai-api/vllm/meta-llama/Llama-3.1-8B-Instruct", "hf/allenai/OLMo-2-1124-13B",
              "openai/gpt-4o"]  # fmt: skip
    plan = plan_slurm(write_config(tmp_path), models=models, log_dir=tmp_path / "logs", gpus_per_task=2,
                      serve_args="--max-model-len 32768 --tool-call-parser hermes")  # fmt: skip
    by_model = {t.model: t for t in plan.tasks}
    assert by_model[models[0]].serve == "Qwen/Qwen3-32B"
    assert by_model[models[1]].serve == "meta-llama/Llama-3.1-8B-Instruct"
    assert by_model[models[2]].serve is None and by_model[models[3]].serve is None
    assert by_model[models[0]].serve_args == ("--max-model-len", "32768", "--tool-call-parser", "hermes")
    assert by_model[models[2]].serve_args == ()
    assert {t.tensor_parallel_size for t in plan.tasks} == {2}
    assert [t.job.settings.max_connections for t in plan.tasks] == [64, 64, None, None]
    assert plan.resources.gpus_per_task == 2 and plan.resources.cpus_per_task == 8


def test_model_args_generation_and_limits_go_to_every_array_task(tmp_path: Path) -> None:
    from vendomini_eval.sweep.plan import eval_settings

    settings = eval_settings(models=SCRIPTED, model_args=["seed=3", f"{SCRIPTED[0]}:fault=looping"], temperature=0.2,
                             max_tokens=256, limits={"token_limit": 9000, "time_limit": 600})  # fmt: skip
    plan = plan_slurm(write_config(tmp_path), models=list(SCRIPTED), log_dir=tmp_path / "logs", settings=settings)
    for task in plan.tasks:
        job = json.loads(manifest_text(plan).splitlines()[task.index])["job"]
        own = {"fault": "looping"} if task.model == SCRIPTED[0] else {}
        assert job["settings"]["model_args"][task.model] == {"seed": 3, **own}
        assert job["settings"]["generate"] == {"temperature": 0.2, "max_tokens": 256}
        assert (job["settings"]["token_limit"], job["settings"]["time_limit"]) == (9000, 600)
        assert job["settings"]["log_buffer"] == 1  # array tasks may be killed: every finished sample is kept


def test_the_array_spec_lists_only_the_given_indices() -> None:
    assert array_spec([0, 1, 2, 5, 7, 8], None) == "0-2,5,7-8"
    assert array_spec([3], 4) == "3%4"


def test_dry_run_prints_the_plan_and_the_script_and_writes_nothing(tmp_path: Path) -> None:
    config, log_dir = write_config(tmp_path), tmp_path / "logs"
    result = vendomini("slurm", "submit", config, "--model", "vllm/Qwen/Qwen3-32B", "--model", SCRIPTED[0],
                       "--shards", "2", "--gpus-per-task", "2", "--partition", "gpu", "--mem", "128G", "--time",
                       "12:00:00", "--array-parallelism", "3", "--account", "proj-7", "--qos", "high",
                       "--sbatch-arg=--constraint=a100", "--sbatch-arg=--mail-type=END", "--log-dir", log_dir,
                       "--dry-run")  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "shards      2 per model; array size 4 (4 to submit: --array=0-3%3)" in out
    assert "per task    8 CPUs, 2 GPUs (--gres=gpu:2), mem 128G, time 12:00:00, partition gpu" in out
    assert "    0  vllm/Qwen/Qwen3-32B / shard-0-of-2: 2 conditions, 2 samples; vllm serve Qwen/Qwen3-32B" in out
    assert "    3  vendomini/heuristic / shard-1-of-2: 2 conditions, 2 samples; direct" in out
    for line in ("#SBATCH --gres=gpu:2", "#SBATCH --partition=gpu", "#SBATCH --mem=128G", "#SBATCH --requeue",
                 "#SBATCH --time=12:00:00", "#SBATCH --account=proj-7", "#SBATCH --qos=high",
                 "#SBATCH --constraint=a100", "#SBATCH --mail-type=END"):  # fmt: skip
        assert line in out.splitlines(), line
    assert "export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1" in out  # compute nodes: offline
    assert not log_dir.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--shards", "0"), "--shards must be an integer >= 1, got 0"),
        (("--shards", "5"), "--shards 5 is more than the 4 conditions of a model; use at most 4"),
        (("--shards", "3", "--max-array-size", "5"), "6 array tasks, more than --max-array-size 5; use --shards 2"),
        (("--time", "tomorrow"), "--time 'tomorrow' is not a SLURM time"),
        (("--mem", "lots"), "--mem 'lots' is not a SLURM mem"),
        (("--partition", "gpu\n#SBATCH --x"), "--partition 'gpu\\n#SBATCH --x' is not a SLURM partition"),
        (("--model", "vllm/Qwen/Qwen3-8B", "--gpus-per-task", "0"), "--gpus-per-task 0: vllm/Qwen/Qwen3-8B is served"),
        (("--serve-args", '--chat-template "x'), "--serve-args '--chat-template \"x': No closing quotation"),
        (("--serve-args", "--api-key sk-1"), "--serve-args: no --api-key; each array task gives its server a key"),
        (("--max-connections", "0"), "--max-connections must be >= 1, got 0"),
        (("--max-samples", "0"), "--max-samples must be >= 1, got 0"),
        (("--account", "a b"), "--account 'a b' is not a SLURM account"),
        (("--sbatch-arg=--array=0-9",), "--sbatch-arg '--array=0-9': expected one sbatch option --name[=value], not"),
        (("--sbatch-arg=constraint",), "--sbatch-arg 'constraint': expected one sbatch option"),
        (("-M", "vllm/x:seed=1"), "-M 'vllm/x:seed=1': vllm/x is not a model of this sweep"),
        (("--model", "heuristic"), "--model: 'heuristic' is not an Inspect model name"),
    ],
)
def test_bad_input_gets_a_clear_error_naming_the_option(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    models = () if "--model" in args else ("--model", SCRIPTED[0], "--model", SCRIPTED[1])
    result = vendomini("slurm", "submit", write_config(tmp_path), *models, "--log-dir", tmp_path / "logs", *args,
                       "--dry-run")  # fmt: skip
    assert result.returncode == 2, result.stdout
    assert message in result.stderr


def test_status_of_a_dir_without_a_manifest_says_so(tmp_path: Path) -> None:
    result = vendomini("slurm", "status", tmp_path)
    assert result.returncode == 2
    assert f"{tmp_path}: no SLURM manifest in {tmp_path / 'slurm'}" in result.stderr


# ----- the array task script without SLURM: the node-local model server -------------------------------------


def run_array_task(
    plan: SlurmPlan, index: int, serve_command: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("SLURM_")}
    environment.update(SLURM_ARRAY_TASK_ID=str(index), VENDOMINI_SERVE_COMMAND=serve_command,
                       VENDOMINI_SERVER_TIMEOUT="60")  # fmt: skip
    for name in ("VLLM_BASE_URL", "VLLM_API_KEY", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        environment.pop(name, None)
    return subprocess.run(["bash", plan.script], env=environment, capture_output=True, text=True, timeout=timeout,
                          check=False)  # fmt: skip


def served_plan(tmp_path: Path, model: str) -> SlurmPlan:
    plan = plan_slurm(write_config(tmp_path, replications=2, max_steps=12), models=[model], log_dir=tmp_path / "logs",
                      limit_conditions=2, gpus_per_task=1, serve_args="--max-model-len 4096")  # fmt: skip
    write_files(plan, "vendomini slurm submit (test)")
    return plan


def server_pid(stderr: str) -> int:
    match = re.search(r"model server pid (\d+): ", stderr)
    assert match, stderr
    return int(match.group(1))


@pytest.mark.parametrize("model", ["vllm/fake-model", "openai-api/vllm/fake-model"])
def test_array_task_serves_the_model_on_the_node_and_stops_the_server(tmp_path: Path, model: str) -> None:
    plan = served_plan(tmp_path, model)
    report = tmp_path / "server.json"
    serve_command = f"{sys.executable} {TESTS / 'test_openai_server.py'} --report {report}"
    result = run_array_task(plan, 0, serve_command)
    assert result.returncode == 0, result.stdout + result.stderr
    pid = server_pid(result.stderr)
    with pytest.raises(ProcessLookupError):  # stopped on exit
        os.kill(pid, 0)
    assert "stopping the model server" in result.stderr

    # The server the task started answered the whole shard, with the per-job key, for the served model id.
    served = json.loads(report.read_text("utf-8"))
    assert served["pid"] == pid
    chats = [r for r in served["requests"] if r["path"] == "/v1/chat/completions"]
    assert len(chats) >= 2 * 2 * 11  # 2 conditions x 2 samples x at least 11 replies of 12 steps
    assert {r["authorization"] for r in served["requests"]} == {f"Bearer {served['api_key']}"}
    assert {r["body"]["model"] for r in chats} == {"fake-model"}

    [task] = plan.tasks
    status = collect_status(task.job.shard)
    assert not status.failed and len(status.complete) == 2
    keys = sample_keys(Path(task.job.shard.log_dir))
    assert sorted(keys) == sorted((t, model, i, 1) for t, _ in task.job.shard.expected for i in ("rep0", "rep1"))

    # The key lived in the environment only: not in the manifest, the script, the logs or the output.
    key = served["api_key"].encode()
    texts = list(texts_below(tmp_path / "logs"))
    assert any(b"fake-model" in data for _, data in texts)  # the search sees the logs' content
    assert not [name for name, data in texts if key in data]
    assert served["api_key"] not in result.stdout + result.stderr


def test_array_task_fails_when_the_server_dies_before_it_is_healthy(tmp_path: Path) -> None:
    plan = served_plan(tmp_path, "vllm/fake-model")
    dies = tmp_path / "dies.sh"
    dies.write_text("exit 7\n", encoding="utf-8")
    result = run_array_task(plan, 0, f"bash {dies}")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "the model server exited (status 7) before it was healthy" in result.stderr
    assert not Path(plan.tasks[0].job.shard.log_dir).exists()  # the shard never ran


def test_array_task_without_a_manifest_line_fails(tmp_path: Path) -> None:
    plan = served_plan(tmp_path, "vllm/fake-model")
    result = run_array_task(plan, 5, "false")
    assert result.returncode == 2
    assert f"no line 6 in {plan.manifest}" in result.stderr


# ----- a real single-node SLURM cluster --------------------------------------------------------------------

SLURM_BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "scontrol", "sinfo")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate: Any, timeout: float, what: str, interval: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """munged, slurmctld and slurmd on this machine, with their own key, sockets, state and configuration; the
    clients find it through SLURM_CONF. Stopped by pid at the end. Yields the configuration file."""
    missing = [name for name in SLURM_BINARIES if shutil.which(name) is None and not Path(f"/usr/sbin/{name}").exists()]
    if missing:
        message = f"SLURM binaries missing: {', '.join(missing)} (apt-get install slurm-wlm munge)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    root = tmp_path_factory.mktemp("slurm")
    for name in ("munge", "state", "spool", "log"):
        (root / name).mkdir(mode=0o700)
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    socket_path = root / "munge" / "munge.socket"
    host = socket.gethostname().split(".")[0]  # what slurmd calls its node: `hostname -s`
    config = root / "slurm.conf"
    config.write_text(
        f"""\
ClusterName=vendomini-test
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
AuthType=auth/munge
CredType=cred/munge
# cred_expire: a requeued job may start again after 10 s rather than the default 120 s
AuthInfo=socket={socket_path},cred_expire=10
StateSaveLocation={root / "state"}
SlurmdSpoolDir={root / "spool"}
SlurmctldPidFile={root / "slurmctld.pid"}
SlurmdPidFile={root / "slurmd.pid"}
SlurmctldLogFile={root / "log" / "slurmctld.log"}
SlurmdLogFile={root / "log" / "slurmd.log"}
# linuxproc and task/none: without cgroups here, other plugins let jobs "complete" with no output
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# builtin: starts a queued array task as soon as a CPU frees (backfill would wait for its 30 s pass)
SchedulerType=sched/builtin
MpiDefault=none
ReturnToService=2
MinJobAge=3600
NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count() or 1} RealMemory=2000 State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
""",
        encoding="utf-8",
    )
    sbin = [Path(p) for p in ("/usr/sbin", "/usr/bin")]
    binary = {name: next((str(d / name) for d in sbin if (d / name).exists()), name) for name in SLURM_BINARIES[:3]}
    out = (root / "log" / "daemons.out").open("w", encoding="utf-8")
    processes: list[subprocess.Popen[bytes]] = []
    previous = os.environ.get("SLURM_CONF")
    try:
        processes.append(subprocess.Popen(
            [binary["munged"], "--foreground", "--force", f"--socket={socket_path}", f"--key-file={key}",
             f"--pid-file={root / 'munge' / 'munged.pid'}", f"--seed-file={root / 'munge' / 'munged.seed'}",
             f"--log-file={root / 'log' / 'munged.log'}"], stdout=out, stderr=subprocess.STDOUT,
        ))  # fmt: skip
        _wait(socket_path.exists, 10, "munged's socket", 0.1)
        processes.append(subprocess.Popen([binary["slurmctld"], "-D", "-i", "-f", str(config)], stdout=out,
                                          stderr=subprocess.STDOUT))  # fmt: skip
        processes.append(subprocess.Popen([binary["slurmd"], "-D", "-f", str(config)], stdout=out,
                                          stderr=subprocess.STDOUT))  # fmt: skip
        os.environ["SLURM_CONF"] = str(config)

        def node_idle() -> bool:
            for process in processes:
                if process.poll() is not None:
                    log = (root / "log" / "daemons.out").read_text("utf-8")[-2000:]
                    raise RuntimeError(f"{process.args[0]} exited with {process.returncode}: {log}")
            result = subprocess.run(["sinfo", "--noheader", "--format=%t"], capture_output=True, text=True, check=False)
            return result.stdout.strip() == "idle"

        _wait(node_idle, 60, "the SLURM node to be idle")
        yield config
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        out.close()
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous


def submit(*args: str | Path) -> tuple[str, subprocess.CompletedProcess[str]]:
    """`vendomini slurm submit ARGS`; the array job id it reports."""
    result = vendomini("slurm", "submit", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    match = re.search(r"submitted array job (\d+): ", result.stdout)
    assert match, result.stdout
    return match.group(1), result


def queued(job_id: str) -> list[str]:
    """The job's array tasks still pending or running (`squeue` shows no others)."""
    result = subprocess.run(["squeue", "--noheader", "--array", f"--jobs={job_id}", "--format=%i %t"],
                            capture_output=True, text=True, check=False)  # fmt: skip
    return result.stdout.split("\n") if result.stdout.strip() else []


def task_states(job_id: str) -> dict[str, tuple[str, str]]:
    """Array task id -> (state, exit code) from slurmctld's job records."""
    result = subprocess.run(["scontrol", "--oneliner", "show", "job", job_id], capture_output=True, text=True,
                            check=True)  # fmt: skip
    states = {}
    for line in result.stdout.splitlines():
        fields = dict(re.findall(r"(\w+)=(\S+)", line))
        states[fields["ArrayTaskId"]] = (fields["JobState"], fields["ExitCode"])
    return states


@pytest.mark.slurm
def test_a_sweep_runs_as_a_slurm_array_job_and_every_sample_completes(slurm_cluster: Path, tmp_path: Path) -> None:
    config, log_dir = write_config(tmp_path, replications=2), tmp_path / "logs"
    args = (config, "--model", SCRIPTED[0], "--model", SCRIPTED[1], "--shards", "2", "--log-dir", log_dir)
    job_id, result = submit(*args)
    assert "array size 4 (4 to submit: --array=0-3)" in result.stdout
    _wait(lambda: not queued(job_id), 300, f"array job {job_id}")

    assert task_states(job_id) == {str(i): ("COMPLETED", "0:0") for i in range(4)}
    [(manifest, tasks)] = read_manifests(log_dir)
    for task in tasks:  # each array task wrote only its own shard's logs, every sample complete
        shard_dir = Path(task.job.shard.log_dir)
        expected = sorted((name, model, i, 1) for name, model in task.job.shard.expected for i in ("rep0", "rep1"))
        assert sorted(sample_keys(shard_dir)) == expected
    assert len(sample_keys(log_dir)) == 4 * 2 * 2  # conditions x models x replications, nothing twice
    outputs = sorted(p.name for p in manifest.parent.glob("*.out"))
    assert outputs == [f"{manifest.stem}-{job_id}_{i}.out" for i in range(4)]

    status = vendomini("slurm", "status", log_dir)
    assert status.returncode == 0, status.stdout
    assert "4/4 array tasks complete" in status.stdout and "8/8 tasks complete" in status.stdout
    again = vendomini("slurm", "submit", *args)
    assert again.returncode == 0 and "every shard is complete; nothing to submit" in again.stdout


@pytest.mark.slurm
def test_a_cancelled_array_task_is_completed_by_resubmitting_without_rerunning_finished_samples(
    slurm_cluster: Path, tmp_path: Path
) -> None:
    """Shard 0 is cancelled once one of its two tasks has finished and the other has finished a sample (tasks
    and samples run one at a time: --max-tasks 1 --max-samples 1). Resubmitting the same command submits only
    that array task, which keeps the finished task as it was and the finished samples of the interrupted one."""
    config, log_dir = write_config(tmp_path, replications=3, max_steps=150), tmp_path / "logs"
    args = (config, "--model", SCRIPTED[0], "--shards", "2", "--max-tasks", "1", "--max-samples", "1",
            "--log-dir", log_dir)  # fmt: skip
    job_id, _ = submit(*args)
    [(_, tasks)] = read_manifests(log_dir)
    shard_0 = Path(tasks[0].job.shard.log_dir)
    _wait(lambda: (success_logs(shard_0) and partial_samples(shard_0)) or not queued(job_id), 300,
          "a finished task and a finished sample of the next in shard 0", 0.1)  # fmt: skip
    subprocess.run(["scancel", f"{job_id}_0"], check=True)
    _wait(lambda: not queued(job_id), 300, f"array job {job_id}")
    states = task_states(job_id)
    assert states["0"][0] == "CANCELLED", states  # the cancel landed mid-shard
    assert states["1"] == ("COMPLETED", "0:0")

    finished = {p: (os.stat(p).st_mtime_ns, h.eval.eval_id) for p, h in success_logs(log_dir).items()}
    assert len(finished) == 3  # shard 1's two tasks, and shard 0's first
    interrupted = partial_samples(shard_0)
    assert 1 <= len(interrupted) < 3, interrupted  # the second task of shard 0 was cut mid-run
    status = vendomini("slurm", "status", log_dir)
    assert status.returncode == 1 and "INCOMPLETE" in status.stdout
    assert "resume (submits only the incomplete array tasks): vendomini slurm submit" in status.stdout

    resumed_id, result = submit(*args)
    assert "array size 2 (1 to submit: --array=0)" in result.stdout
    _wait(lambda: not queued(resumed_id), 300, f"array job {resumed_id}")
    assert task_states(resumed_id) == {"0": ("COMPLETED", "0:0")}

    logs = success_logs(log_dir)
    for path, (mtime, eval_id) in finished.items():  # kept as they were: not run again
        assert path in logs and os.stat(path).st_mtime_ns == mtime and logs[path].eval.eval_id == eval_id
    uuids = sample_uuids(log_dir)
    for key, uuid in interrupted.items():  # the interrupted task's finished samples were reused, not run again
        assert uuids[key] == uuid, key
    expected = sorted(
        (name, SCRIPTED[0], i, 1) for t in tasks for name, _ in t.job.shard.expected for i in ("rep0", "rep1", "rep2")
    )
    assert sorted(sample_keys(log_dir)) == expected  # every sample once
    assert vendomini("slurm", "status", log_dir).returncode == 0


def test_stopping_the_array_task_stops_the_server_and_the_shard(tmp_path: Path) -> None:
    """SIGTERM (scancel, a time limit, a requeue) while the shard runs: the task exits 143, server and shard gone."""
    plan = plan_slurm(write_config(tmp_path, replications=2, max_steps=2000), models=["vllm/fake-model"],
                      log_dir=tmp_path / "logs", limit_conditions=1, gpus_per_task=1)  # fmt: skip
    write_files(plan, "test")
    report = tmp_path / "server.json"
    environment = {key: value for key, value in os.environ.items() if not key.startswith("SLURM_")}
    serve_command = f"{sys.executable} {TESTS / 'test_openai_server.py'} --report {report}"
    environment.update(SLURM_ARRAY_TASK_ID="0", VENDOMINI_SERVER_TIMEOUT="60", VENDOMINI_SERVE_COMMAND=serve_command)
    process = subprocess.Popen(["bash", plan.script], env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)  # fmt: skip
    try:
        shard_dir = Path(plan.tasks[0].job.shard.log_dir)
        _wait(lambda: any(shard_dir.glob("*.eval")) or process.poll() is not None, 120, "the shard's log", 0.1)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 143, out + err
    pid = server_pid(err)
    shard_match = re.search(r"shard pid (\d+)", err)
    assert shard_match, err
    for stopped in (pid, int(shard_match.group(1))):
        with pytest.raises(ProcessLookupError):
            os.kill(stopped, 0)
    assert json.loads(report.read_text("utf-8"))["pid"] == pid


@pytest.mark.slurm
@pytest.mark.llm
def test_a_llamacpp_model_is_served_on_the_node_of_its_array_task(slurm_cluster: Path, tmp_path: Path) -> None:
    """SmolLM2 (the local-llm extra) on a CPU node: the array task starts llama.cpp's server, runs the shard
    through Inspect's OpenAI-compatible provider with the per-job key, and stops the server."""
    from test_llamacpp import require_local_llm, server_key

    require_local_llm()
    model, log_dir = "openai-api/llama-cpp/smollm2", tmp_path / "logs"
    job_id, result = submit(write_config(tmp_path, max_steps=10), "--model", model, "--limit-conditions", "1",
                            "--cpus-per-task", str(os.cpu_count() or 1), "--log-dir", log_dir)  # fmt: skip
    assert "llama.cpp server " in result.stdout and "--gres" not in result.stdout
    [(manifest, [task])] = read_manifests(log_dir)
    assert task.job.settings.context_lengths == {model: 8192}  # the agent's window fits the server's context
    output = manifest.parent / f"{manifest.stem}-{job_id}_0.out"
    pids: list[str] = []

    def server_started() -> bool:
        pids[:] = re.findall(r"model server pid (\d+): ", output.read_text("utf-8")) if output.exists() else []
        return bool(pids) or not queued(job_id)

    _wait(server_started, 120, "the array task's model server", 0.1)
    assert pids, output.read_text("utf-8")
    key = server_key(int(pids[0]))
    _wait(lambda: not queued(job_id), 300, f"array job {job_id}")

    assert task_states(job_id) == {"0": ("COMPLETED", "0:0")}, output.read_text("utf-8")
    text = output.read_text("utf-8")
    assert "model server healthy" in text and "stopping the model server" in text
    with pytest.raises(ProcessLookupError):
        os.kill(int(pids[0]), 0)
    assert sorted(sample_keys(Path(task.job.shard.log_dir))) == [(task.job.shard.expected[0][0], model, "rep0", 1)]
    assert not [name for name, data in texts_below(tmp_path) if key.encode() in data]
