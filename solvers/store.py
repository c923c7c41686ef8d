"""What a sample keeps in its Inspect store: the run's identity while it runs, its outcome once it ends.

The live Episode stays in the solver (a store diff per tool call would cost O(store size)); the summary and
the compact per-step trace are written once, when the run ends, for the scorers and the analysis.
"""

from __future__ import annotations

from typing import Any, Literal

from inspect_ai.util import StoreModel

from vendomini_eval.results import EpisodeSummary

Outcome = Literal["crashed", "non_starter", "terminated", "censored", "limit", "error"]
"""crashed: the detector confirmed a crash. non_starter: it confirmed a crash whose onset came before the
agent's first productive action (the agent never functioned: a crash in the survival data, left out of the
PE-hazard test). terminated: the business failed. censored: max_steps reached. limit: an Inspect limit
(messages, tokens, time, cost) or a sweep ceiling cut the run short. error: a provider or harness error cut it
short. Only `crashed` and `non_starter` are crashes; the others are right-censored at the steps run."""


class EpisodeRecord(StoreModel):
    condition: dict[str, Any] | None = None
    seed: int | None = None
    outcome: Outcome | None = None
    limit: str | None = None
    """Which limit or error ended the run (for outcome limit / error): an Inspect limit, `budget` (a sweep
    ceiling, `vendomini run --max-...`), or the error's type."""
    model_time: float | None = None
    """Seconds the solver waited on the model's replies (Inspect's retries and rate-limit waits included)."""
    summary: dict[str, Any] | None = None
    """Episode.summary() at the end of the run, as JSON (`model_dump(mode="json")`); `episode_summary()` reads it."""
    trace: dict[str, Any] | None = None
    """Compact columnar trace: {"columns": {name: [...]}, "signals": [...]}."""

    def episode_summary(self) -> EpisodeSummary | None:
        """The run's summary as stored, or None when the run never started."""
        return None if self.summary is None else EpisodeSummary.model_validate(self.summary)
