"""Inspect tasks: the generic one (vendomini.py) and a front door per phase. Installed as vendomini_eval.tasks."""

from vendomini_eval.tasks.phase1 import phase1
from vendomini_eval.tasks.phase2 import phase2
from vendomini_eval.tasks.phase3 import phase3
from vendomini_eval.tasks.phase4 import phase4
from vendomini_eval.tasks.phase5 import phase5
from vendomini_eval.tasks.vending_bench import vending_bench
from vendomini_eval.tasks.vendomini import vendomini

__all__ = ["phase1", "phase2", "phase3", "phase4", "phase5", "vending_bench", "vendomini"]
