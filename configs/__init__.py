"""Experiment definitions shipped with the package (installed as vendomini_eval.configs)."""
