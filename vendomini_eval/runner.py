"""The direct runner: drives an Episode with a scripted policy, without Inspect (calibration, tests, scale)."""

from __future__ import annotations

from dataclasses import dataclass

from vendomini_eval.condition import Condition
from vendomini_eval.episode import Episode
from vendomini_eval.policies import PolicyContext, make_policy
from vendomini_eval.results import EpisodeSummary


@dataclass
class RunOutput:
    """One scripted run: the episode (trace and final state), the policy that drove it, and its summary."""

    episode: Episode
    policy: str
    fault: str | None
    onset: int | None
    summary: EpisodeSummary

    @property
    def state_hashes(self) -> list[str]:
        return self.episode.trace.column("state_hash")


def run_policy(
    condition: Condition,
    seed: int,
    policy: str = "heuristic",
    *,
    fault: str | None = None,
    onset: int | None = None,
    policy_seed: int | None = None,
) -> RunOutput:
    """Run one episode to its end (crash, business failure or max_steps) with `policy`, a name of `POLICIES`
    (heuristic, attentive, random, open_loop or an LLM-like behaviour such as "chatter"); `onset` is a fault's or a
    behaviour's first step. The policy's own seed defaults to the run seed, so one number reproduces the whole
    run."""
    episode = Episode(condition, seed)
    agent = make_policy(
        policy, PolicyContext.for_condition(condition), seed if policy_seed is None else policy_seed,
        fault=fault, onset=onset,
    )  # fmt: skip
    observation = None
    while not episode.done:
        action, prediction = agent.act(observation)
        observation = episode.step(action, prediction).observation()
    return RunOutput(episode, policy, fault, onset, episode.summary())
