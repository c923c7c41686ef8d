"""Harness cost per turn and the cacheable share of each request: one sample of phase 1 driven by the scripted
heuristic model through Inspect, beside Inspect's own minimal agent loop.

For runs of 500 and 5,000 steps, with the window a model of unknown context length gets (16,000 tokens; the
scripted model itself declares a small context, `--context-tokens` sets any), it reports:
- our loop: the median milliseconds per turn (from the timestamps of consecutive model events in the log), the
  log's compressed size per step, the window (the largest request in messages and in estimated tokens), and
  the cacheable input share: over all requests, the input tokens that repeat the previous request's input as
  its prefix (message by message, tokens estimated as the window estimates them), over all input tokens;
- Inspect's `react()` with one trivial tool, `submit=False`, driven by a scripted `mockllm/model` that calls
  the tool once per turn for the same number of turns, in the same process and settings: its median ms per
  turn, and our median over its.
Targets: our 5,000-step median within 1.25x of our 500-step median (the bounded window keeps turns flat),
<= 15 ms per turn, <= 1 KB of compressed log per step, a cacheable share >= 0.9 at 5,000 steps with the window
bounded, and our ms per turn <= 1.25x react()'s at 5,000 steps.

    python bench/harness_turns.py [--steps 500 5000]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
from pathlib import Path

from inspect_ai import Task
from inspect_ai import eval as inspect_eval
from inspect_ai.agent import react
from inspect_ai.dataset import Sample
from inspect_ai.log import EvalSample, read_eval_log
from inspect_ai.model import ModelOutput, ModelUsage, get_model
from inspect_ai.tool import tool

from vendomini_eval.results import EpisodeSummary
from vendomini_eval.solvers.agent import DEFAULT_CONTEXT_TOKENS, _estimate_tokens, vendomini_agent
from vendomini_eval.tasks.phase1 import phase1

P_SHOCK = 0.1


def turn_ms(sample: EvalSample) -> float:
    """Median milliseconds between consecutive model calls."""
    times = [event.timestamp for event in sample.events if event.event == "model"]
    return statistics.median((b - a).total_seconds() * 1000 for a, b in itertools.pairwise(times))


def cacheable(sample: EvalSample) -> tuple[float, int, int]:
    """(cacheable input share, largest request in messages, largest in estimated tokens)."""
    shared = total = largest_messages = largest_tokens = 0
    previous: list[str] = []
    for event in (e for e in sample.events if e.event == "model"):
        ids = [message.id or "" for message in event.input]
        tokens = [_estimate_tokens(message) for message in event.input]
        prefix = sum(1 for _ in itertools.takewhile(lambda pair: pair[0] == pair[1], zip(ids, previous, strict=False)))
        shared, total = shared + sum(tokens[:prefix]), total + sum(tokens)
        largest_messages, largest_tokens = max(largest_messages, len(ids)), max(largest_tokens, sum(tokens))
        previous = ids
    return shared / max(total, 1), largest_messages, largest_tokens


def ours(steps: int, log_dir: str, context_tokens: int) -> dict[str, float]:
    task = phase1(p_shock=P_SHOCK, max_steps=steps, replications=1)
    task.solver = vendomini_agent(context_tokens=context_tokens)
    (log,) = inspect_eval(task, model="vendomini/heuristic", log_dir=log_dir, display="none")
    path = Path(log.location)
    sample = read_eval_log(str(path)).samples[0]
    stored = sample.store.get("EpisodeRecord:summary")
    ran = EpisodeSummary.model_validate(stored).steps if stored else 0
    share, messages, tokens = cacheable(sample)
    return {"ran": ran, "ms": turn_ms(sample), "bytes_per_step": path.stat().st_size / max(ran, 1),
            "cacheable": share, "window_messages": messages, "window_tokens": tokens}  # fmt: skip


@tool
def ping():  # Inspect reads the tool from the inner function
    async def execute() -> str:
        """Answer pong.

        Returns:
          The word pong.
        """
        return "pong"

    return execute


def inspect_react(steps: int, log_dir: str) -> float:
    """Median ms per turn of react() for `steps` tool-calling turns of a scripted model."""
    outputs = [ModelOutput.for_tool_call("mockllm/model", "ping", {}) for _ in range(steps)]
    outputs.append(ModelOutput.from_content("mockllm/model", "done"))
    for output in outputs:  # usage given: mockllm would otherwise count tokens with a downloaded tokenizer
        output.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
    model = get_model("mockllm/model", custom_outputs=outputs)
    task = Task(dataset=[Sample(input="Call ping.")], solver=react(tools=[ping()], submit=False))
    (log,) = inspect_eval(task, model=model, log_dir=log_dir, display="none")
    return turn_ms(read_eval_log(log.location).samples[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, nargs="+", default=[500, 5000])
    parser.add_argument("--context-tokens", type=int, default=DEFAULT_CONTEXT_TOKENS,
                        help="our window's budget (default: what a model of unknown context length gets; the "
                        "scripted models declare 2,048 tokens of context, a 1,024-token window)")  # fmt: skip
    args = parser.parse_args()
    results = {}
    print(f"{'steps':>6} {'ran':>6} {'ms/turn':>8} {'react ms/turn':>14} {'ours/react':>10} {'log B/step':>10} "
          f"{'cacheable':>9} {'window msgs':>11} {'window tokens':>13}")  # fmt: skip
    for steps in args.steps:
        with tempfile.TemporaryDirectory() as log_dir:
            row = ours(steps, log_dir, args.context_tokens)
            react_ms = inspect_react(steps, log_dir)
        results[steps] = row
        print(f"{steps:>6} {row['ran']:>6} {row['ms']:>8.2f} {react_ms:>14.2f} {row['ms'] / react_ms:>10.2f} "
              f"{row['bytes_per_step']:>10.0f} {row['cacheable']:>9.3f} {row['window_messages']:>11} "
              f"{row['window_tokens']:>13}")  # fmt: skip
    short, long = min(results), max(results)
    if short != long:
        print(f"median ratio {long}/{short} steps: {results[long]['ms'] / results[short]['ms']:.2f} (target <= 1.25)")


if __name__ == "__main__":
    main()
