"""Inspect solvers and tools over the core Episode. Installed as vendomini_eval.solvers."""

from vendomini_eval.solvers.agent import system_prompt, trim_window, vendomini_agent
from vendomini_eval.solvers.store import EpisodeRecord
from vendomini_eval.solvers.tools import business_tools, split_call

__all__ = ["EpisodeRecord", "business_tools", "split_call", "system_prompt", "trim_window", "vendomini_agent"]
