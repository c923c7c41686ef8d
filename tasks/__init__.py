"""Inspect tasks (`@task` functions), one file per experiment phase. Installed as vendomini_eval.tasks."""
