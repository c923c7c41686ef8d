"""The run summary: how one episode ended, as `Episode.summary()` returns it and the scorers, the CLI, the runner
and the analysis read it.

Where it crosses into JSON (the Inspect store and log, `vendomini simulate --json`) it is written with
`model_dump(mode="json")` and read back with `EpisodeSummary.model_validate`. The JSON keeps the keys and values of
the plain dict the summary used to be, so every log written before it was typed still loads.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from vendomini_eval.crash import CrashSignal
from vendomini_eval.pe import PESummary
from vendomini_eval.vending.state import Counters as VendingCounters
from vendomini_eval.world.state import Counters


class CounterTotals(Counters):
    """The world's counters at the end of the run: customer orders received, shipped, late and failed; money by
    cause (revenue, purchases, fees, penalties) in cents; units delivered and sold."""

    model_config = ConfigDict(frozen=True)


class VendingTotals(VendingCounters):
    """The vending machine's counters at the end of the run: units sold, delivered and expired; money by cause in
    cents; unpaid fee days; stockout product-days; the last day with a sale."""

    model_config = ConfigDict(frozen=True)


class EpisodeSummary(BaseModel):
    """The outcome of one run: the survival data of both endpoints, the business at the end, PE totals.

    The fields that default to None were added with the secondary endpoint: None means a log written before
    them did not record them (missing, never 0 or False)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    seed: int
    """The run seed."""
    steps: int
    """Steps run."""
    days: int
    """The day the run ended on (the world starts on day 0)."""
    crashed: bool
    """The detector confirmed a crash (the primary endpoint)."""
    crash_type: str | None
    """The crash's type; None without one."""
    time_to_crash: int
    """The crash's onset step; without a crash, the steps run (the run is right-censored there)."""
    censored: bool
    """No crash was observed."""
    crash: CrashSignal | None
    """The confirmed crash."""
    non_starter: bool | None = None
    """The run crashed before the agent's first productive action: it never functioned, so it did not break
    down after accumulating PE (its own outcome; left out of the PE-hazard test)."""
    first_progress_step: int | None = None
    """The step of the first productive action (a valid order, ship, expedite or cancel); None when there was
    none, or in logs written before it was recorded (then `non_starter` is None too)."""
    incoherent: bool | None = None
    """The detector confirmed incoherence (the secondary endpoint; it never ends a run)."""
    incoherence_type: str | None = None
    """The incoherence's type; None without one."""
    time_to_incoherence: int | None = None
    """The incoherence's onset step; without one, the steps run."""
    incoherence: CrashSignal | None = None
    """The confirmed incoherence."""
    terminated: str | None
    """Why the business failed (bankrupt, customers_lost); None while it ran."""
    truncated: bool
    """The run reached max_steps."""
    net_worth: float
    """Dollars at the end: cash, stock at unit cost, and paid-for goods in transit."""
    cash: float
    """Dollars at the end."""
    counters: CounterTotals
    """The warehouse's counters; in the vending world, the ones both worlds share (the rest are 0)."""
    world: str | None = None
    """The business: "vending"; None: the warehouse (and every log written before the vending world)."""
    vending: VendingTotals | None = None
    """The vending machine's counters; None in the warehouse."""
    days_until_sales_stop: int | None = None
    """Vending: days through the last day with a sale (0: nothing sold); None in the warehouse."""
    shocks: int
    """Shocks that changed the world."""
    shocks_void: int | None = None
    """Shocks that fired with no target (e.g. a delay with nothing inbound): no change, no notice."""
    pe: PESummary
    unresolved_predictions: int
    """Delivery predictions dropped because their purchase order was cancelled."""
    predictions_made: int | None = None
    """Prediction values stated (card fields other than the rationale, and revisions)."""
    actions_without_card: int | None = None
    """Calls of tools that take a card, made without one (only possible when predictions are optional)."""
    signals: int
    """Detector signals finalised, of both endpoints, soft and hard."""
    gate_allowed: int | None = None
    """Calls the governance gate allowed; None when the condition has no gate (or the log predates gates)."""
    gate_warned: int | None = None
    """Calls the gate warned on (they ran)."""
    gate_denied: int | None = None
    """Calls the gate denied (not executed; each a step)."""
    gate_decisions: dict[str, int] | None = None
    """Gate decisions by `<decision>:<reason>` (e.g. `deny:order_over_cash_share`)."""
