"""A real model on phase 1: SmolLM2-135M-Instruct (the local-llm extra) served by llama.cpp on this machine.

Runs a phase-1 subset (p_shock 0 and 0.3, pe_mag high, predictions required; 3 replications of up to 100 steps
by default) with `vendomini run --model openai-api/llama-cpp/smollm2`, then reads the logs back and reports per
condition: crash incidence, crash types and onsets (the onset step, and the step the crash was confirmed),
business failures, steps run, and per turn the input and output tokens (as the server reported them) and the
seconds the model took. A rerun on the same log dir only reads what is there (and completes what is missing).
The transcripts stay in the log dir for `inspect view --log-dir DIR`.

    python bench/real_llm.py [--log-dir /tmp/real_llm_logs] [--replications 3] [--max-steps 100]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from inspect_ai.log import list_eval_logs, read_eval_log
from inspect_ai.util import Store

from vendomini_eval.experiments import shipped_configs_dir
from vendomini_eval.solvers import EpisodeRecord

CONFIG = """\
name: real_llm
inherit: {phase1}
replications: {replications}
fixed:
  max_steps: {max_steps}
grid:
  p_shock: [0.0, 0.3]
  pe_mag: [high]
  prediction_mode: [required]
"""


def run(log_dir: Path, model: str, replications: int, max_steps: int) -> float:
    """`vendomini run` on the subset; its wall-clock seconds."""
    with tempfile.TemporaryDirectory() as directory:
        config = Path(directory) / "real_llm.yaml"
        text = CONFIG.format(phase1=shipped_configs_dir() / "phases" / "phase1.yaml", replications=replications,
                             max_steps=max_steps)  # fmt: skip
        config.write_text(text, encoding="utf-8")
        started = time.monotonic()
        command = [sys.executable, "-m", "vendomini_eval.cli", "run", str(config), "--model", model, "--log-dir",
                   str(log_dir), "--display", "log"]  # fmt: skip
        subprocess.run(command, check=True)
        return time.monotonic() - started


@dataclass
class Run:
    outcome: str
    steps: int
    invalid: int
    crash: str | None
    onset: int | None
    confirmed: int | None
    terminated: str | None
    seconds: list[float]
    """Per turn: the seconds from request to reply."""
    tokens: list[tuple[int, int]]
    """Per turn: (input, output) tokens as the server reported them."""


def read_runs(log_dir: Path) -> dict[float, list[Run]]:
    """The runs of every successful log below log_dir, by p_shock."""
    runs: dict[float, list[Run]] = defaultdict(list)
    for info in list_eval_logs(str(log_dir)):
        log = read_eval_log(info.name)
        if log.status != "success":
            continue
        for sample in log.samples or []:
            record = EpisodeRecord(store=Store(sample.store))
            summary = record.episode_summary()
            assert summary is not None and record.condition is not None and sample.error is None
            events = [e for e in sample.events if e.event == "model"]
            runs[record.condition["p_shock"]].append(Run(
                outcome=str(record.outcome), steps=summary.steps, crash=summary.crash_type,
                invalid=sum(1 for valid in record.trace["columns"]["valid"] if not valid) if record.trace else 0,
                onset=summary.time_to_crash if summary.crashed else None,
                confirmed=summary.crash.resolved_step if summary.crash is not None else None,
                terminated=summary.terminated,
                seconds=[(e.completed - e.timestamp).total_seconds() for e in events if e.completed],
                tokens=[(e.output.usage.input_tokens, e.output.usage.output_tokens) for e in events if e.output.usage],
            ))  # fmt: skip
    return runs


def report(runs: dict[float, list[Run]]) -> str:
    lines = []
    for p_shock, group in sorted(runs.items()):
        crashed = [r for r in group if r.crash]
        types = dict(Counter(r.crash for r in crashed))
        lines.append(f"p_shock {p_shock}: {len(crashed)}/{len(group)} runs crashed, types {types or '-'}; "
                     f"{sum(1 for r in group if r.terminated)} business failures")  # fmt: skip
        for r in group:
            crash = f"{r.crash}, onset step {r.onset} (confirmed at {r.confirmed})" if r.crash else "no crash"
            lines.append(f"  {r.outcome:<9} {r.steps:>4} steps, {len(r.seconds):>4} turns, {r.invalid:>4} invalid "
                         f"steps: {crash}")  # fmt: skip
        seconds = [s for r in group for s in r.seconds]
        inputs, outputs = zip(*[t for r in group for t in r.tokens], strict=True) if seconds else ((0,), (0,))
        if seconds:
            lines.append(f"  per turn: {statistics.median(seconds):.2f} s median, {statistics.mean(seconds):.2f} s "
                         f"mean, {max(seconds):.1f} s max; input tokens {statistics.mean(inputs):.0f} mean "
                         f"({max(inputs)} max), output tokens {statistics.mean(outputs):.1f} mean "
                         f"({max(outputs)} max)")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log-dir", type=Path, default=Path("/tmp/real_llm_logs"))
    parser.add_argument("--model", default="openai-api/llama-cpp/smollm2")
    parser.add_argument("--replications", type=int, default=3)
    parser.add_argument("--max-steps", type=int, default=100)
    args = parser.parse_args()
    seconds = run(args.log_dir, args.model, args.replications, args.max_steps)
    print(f"\n{args.model} on phase 1 (pe_mag high, predictions required), {args.replications} replications of up to "
          f"{args.max_steps} steps, in {seconds:.0f} s; logs: {args.log_dir}")  # fmt: skip
    print(report(read_runs(args.log_dir)))


if __name__ == "__main__":
    main()
