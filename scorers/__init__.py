"""Inspect scorers and metrics over the core's run summaries. Installed as vendomini_eval.scorers."""
