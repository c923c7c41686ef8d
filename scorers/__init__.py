"""Inspect scorers and metrics over the core's run summaries. Installed as vendomini_eval.scorers.

Each scorer reads the sample's `EpisodeRecord` (solvers/store.py) and wraps numbers computed by the core
(`Episode.summary()`); method and value schemas: docs/METHOD.md, "Scoring".
"""

from ._kaplan_meier import kaplan_meier, km_median
from ._metrics import (
    CRASH_TYPE_LABELS,
    crash_rate,
    crash_type_share,
    incoherence_rate,
    km_median_incoherence,
    km_median_survival,
)
from ._scorers import (
    HEADLINE_METRIC,
    NO_EPISODE_REASON,
    business,
    crash_type,
    incoherence,
    prediction_errors,
    survival,
    vending_bench,
    vendomini_scorers,
)
from ._values import BUSINESS_KEYS, INCOHERENCE_KEYS, NO_CRASH, PE_KEYS, SURVIVAL_KEYS, VENDING_KEYS

__all__ = [
    "BUSINESS_KEYS",
    "CRASH_TYPE_LABELS",
    "HEADLINE_METRIC",
    "INCOHERENCE_KEYS",
    "NO_CRASH",
    "NO_EPISODE_REASON",
    "PE_KEYS",
    "SURVIVAL_KEYS",
    "VENDING_KEYS",
    "business",
    "crash_rate",
    "crash_type",
    "crash_type_share",
    "incoherence",
    "incoherence_rate",
    "kaplan_meier",
    "km_median",
    "km_median_incoherence",
    "km_median_survival",
    "prediction_errors",
    "survival",
    "vending_bench",
    "vendomini_scorers",
]
