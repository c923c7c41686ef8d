"""Machine instructions per Episode.step, counted by valgrind, and the share of the step's parts.

Timings on a shared machine move by a quarter between runs; an instruction count does not move at all, so it
is the measure for comparing two versions of the core or for splitting a step into its parts.

    python bench/step_cost.py [--level 4] [--steps 500 2500] [--jobs 2]

Records the heuristic policy's actions on one run (p_shock 0.1, seed 11), then replays them into a fresh
Episode under `valgrind --tool=callgrind`, once for each of the two step counts: the difference of the two
counts divided by the difference of the steps is the cost of a step in the running state (start-up, imports
and the first steps cancel out). It does so for the whole step, then with parts of it replaced by constants,
cumulatively: the state hash; the actionability check and the net worth; the crash detector and the PE tracker.
What remains is the world's transition and the step's own work. Needs valgrind (`apt-get install valgrind`).
Valgrind does not run the CPU's SHA instructions, so OpenSSL's portable SHA-256 is counted: the state hash's
share of the count is larger than its share of the time.
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

from vendomini_eval.condition import Condition
from vendomini_eval.episode import Episode

P_SHOCK = 0.1
SEED = 11
ABLATIONS = {
    "whole step": (),
    "without the state hash": ("hash",),
    "... and the actionability check and net worth": ("hash", "actionable", "net_worth"),
    "... and the crash detector and PE tracker": ("hash", "actionable", "net_worth", "detector", "pe"),
}


def condition(level: int, steps: int) -> Condition:
    return Condition(complexity_level=level, max_steps=steps, p_shock=P_SHOCK, continue_after_crash=10**6)


def record(level: int, steps: int, path: str) -> int:
    """Run the heuristic policy and store its (action, prediction) pairs; return how many steps it ran."""
    from vendomini_eval.policies import PolicyContext, make_policy

    c = condition(level, steps)
    episode, policy = Episode(c, SEED), make_policy("heuristic", PolicyContext.for_condition(c), SEED)
    actions, observation = [], None
    while not episode.done:
        action, prediction = policy.act(observation)
        actions.append((action, prediction))
        observation = episode.step(action, prediction).observation()
    with open(path, "wb") as stream:
        pickle.dump(actions, stream)
    return len(actions)


def ablate(parts: list[str]) -> None:
    """Replace the named parts of the step by constants (for this measurement process only)."""
    from vendomini_eval import episode as episode_module
    from vendomini_eval.crash import CrashDetector
    from vendomini_eval.pe import PETracker
    from vendomini_eval.world.state import WorldState
    from vendomini_eval.world.world import World

    if "hash" in parts:
        WorldState.state_hash = lambda self: "0" * 64
    if "actionable" in parts:
        episode_module.productive_action_available = lambda world: True
    if "net_worth" in parts:
        World.net_worth_cents = lambda self: 0
    if "detector" in parts:
        CrashDetector.observe = lambda self, facts: []
    if "pe" in parts:
        update, first = PETracker.update, []

        def first_record(self: PETracker, step: int, observations: list, briers: list) -> object:
            if not first:
                first.append(update(self, step, observations, briers))
            return first[0]

        PETracker.update = first_record


def replay(path: str, level: int, steps: int, parts: list[str]) -> None:
    ablate(parts)
    with open(path, "rb") as stream:
        actions = pickle.load(stream)
    episode = Episode(condition(level, len(actions)), SEED)
    for action, prediction in actions[:steps]:
        episode.step(action, prediction)


def instructions(path: str, level: int, steps: int, parts: tuple[str, ...]) -> int:
    command = [
        "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__,
        "--replay", path, "--replay-steps", str(steps), "--level", str(level), "--ablate", *parts,
    ]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True).stderr
    match = re.search(r"Collected : (\d+)", out)
    if match is None or "Traceback" in out:
        raise RuntimeError(f"the replay of {steps} steps failed under valgrind:\n{out[-2000:]}")
    return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--level", type=int, default=4, choices=range(5), help="complexity level")
    parser.add_argument("--steps", type=int, nargs=2, default=[500, 2500], metavar=("FEW", "MANY"))
    parser.add_argument("--jobs", type=int, default=2, help="valgrind processes at once")
    parser.add_argument("--replay", help=argparse.SUPPRESS)  # the measured child process
    parser.add_argument("--replay-steps", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--ablate", nargs="*", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.replay:
        replay(args.replay, args.level, args.replay_steps, args.ablate)
        return
    few, many = args.steps
    if not 0 < few < many:
        parser.error(f"--steps: need 0 < FEW < MANY, got {few} {many}")
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "actions.pickle")
        ran = record(args.level, many, path)
        if ran < many:
            sys.exit(f"the recorded run ended after {ran} steps, before {many}; choose fewer --steps")
        jobs = [(parts, n) for parts in ABLATIONS.values() for n in (few, many)]
        with ThreadPoolExecutor(args.jobs) as pool:
            counts = list(pool.map(lambda job: instructions(path, args.level, job[1], job[0]), jobs))
    print(f"complexity {args.level}, p_shock {P_SHOCK}, heuristic policy, seed {SEED}: instructions per step "
          f"over steps {few} to {many}")  # fmt: skip
    whole = None
    for i, label in enumerate(ABLATIONS):
        per_step = (counts[2 * i + 1] - counts[2 * i]) / (many - few)
        whole = whole or per_step
        print(f"{label:<44} {per_step:>12,.0f} {per_step / whole:>7.0%}")


if __name__ == "__main__":
    main()
