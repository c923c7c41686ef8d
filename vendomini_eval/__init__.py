"""VendoMini-Eval: do accumulated prediction errors cause long-horizon agent breakdowns?

The core (world, shocks, predictions, PE, crash detection, configs, policies) is plain Python and never imports
inspect_ai; the Inspect layer lives in vendomini_eval.tasks, .solvers and .scorers.
"""

__version__ = "0.1.0"
