"""Inspect solvers and tools over the core Episode. Installed as vendomini_eval.solvers."""
