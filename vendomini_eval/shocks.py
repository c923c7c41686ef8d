"""Shocks: a schedule drawn from the run seed before the episode, and what each shock does to the world.

Common random numbers: every step gets the same uniform draws whatever the condition's p_shock, and a step
fires when its draw is below p_shock. So the schedule depends only on the seed and the condition, never on
the agent, and the shocks at p_shock = 0.1 are a subset of those at 0.3 for the same seed. Targets (which
purchase order, which offer) are picked from the state when the shock fires, by the pre-drawn uniform.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vendomini_eval.condition import Condition
from vendomini_eval.world.state import Effect, Notice, ShockRecord
from vendomini_eval.world.world import RECENT_SHOCKS_KEPT, World

SHOCK_KINDS = ("temporal", "quantity", "cost", "causal", "rule")

# Weights over SHOCK_KINDS. "realistic" keeps the original study's temporal .4 / quantity .3 / causal+rule .3
# shape and gives cost shocks a share taken evenly from each (docs/METHOD.md, "Shocks").
TYPE_MIXES: dict[str, tuple[float, float, float, float, float]] = {
    "realistic": (0.35, 0.25, 0.15, 0.15, 0.10),
    "temporal_only": (1.0, 0.0, 0.0, 0.0, 0.0),
    "quantity_only": (0.0, 1.0, 0.0, 0.0, 0.0),
    "causal_only": (0.0, 0.0, 0.0, 0.5, 0.5),
    "uniform": (0.2, 0.2, 0.2, 0.2, 0.2),
}


@dataclass(frozen=True, slots=True)
class Magnitude:
    shift_days: int
    """Temporal: days a delivery is delayed (early deliveries move by half, rounded up)."""
    fraction: float
    """Quantity: share of a delivery that goes missing; demand shocks multiply demand by 1 + 4 x fraction.
    Cost: relative price rise."""
    duration_days: int
    """How long a temporary change (lead time, demand, price, dropped SKU, tool down, rule) lasts."""
    rule_factor: float
    """Rule: multiplier on a minimum order or a fee."""


MAGNITUDES = {
    "low": Magnitude(shift_days=1, fraction=0.2, duration_days=5, rule_factor=1.5),
    "medium": Magnitude(shift_days=3, fraction=0.5, duration_days=15, rule_factor=2.0),
    "high": Magnitude(shift_days=7, fraction=0.8, duration_days=40, rule_factor=3.0),
}

EARLY_SHARE = 0.25  # share of temporal delivery shocks that bring a delivery forward
PARTIAL_NOTICE_SHARE = 0.5  # share of shocks announced under partial observability
DOWN_TOOLS = ("order", "check_inventory", "check_catalogue")


@dataclass(frozen=True, slots=True)
class ScheduledShock:
    step: int
    kind: str
    variant_u: float
    target_u: float
    sign_u: float
    notice_u: float


class ShockSchedule:
    """Per-step uniforms for steps 1..max_steps; `at(step)` is the shock firing after that step's action."""

    def __init__(self, condition: Condition, rng: np.random.Generator) -> None:
        n = condition.max_steps
        # One row of six uniforms per step, so a step's draws do not depend on max_steps.
        draws = rng.random((n, 6)).T
        self._fire = draws[0] < condition.p_shock
        self._fire_steps = frozenset(int(i) + 1 for i in np.flatnonzero(self._fire))
        cumulative = np.cumsum(TYPE_MIXES[condition.pe_type_mix])
        cumulative[-1] = 1.0
        self._kind = np.searchsorted(cumulative, draws[1], side="right")
        self._variant, self._target, self._sign, self._notice = draws[2], draws[3], draws[4], draws[5]

    def at(self, step: int) -> ScheduledShock | None:
        if step not in self._fire_steps:
            return None
        i = step - 1
        return ScheduledShock(
            step=step,
            kind=SHOCK_KINDS[int(self._kind[i])],
            variant_u=float(self._variant[i]),
            target_u=float(self._target[i]),
            sign_u=float(self._sign[i]),
            notice_u=float(self._notice[i]),
        )

    def steps(self) -> list[int]:
        return sorted(self._fire_steps)

    def listing(self) -> list[tuple[int, str]]:
        """(step, kind) of every scheduled shock: the schedule's identity, for comparing runs."""
        return [(s, SHOCK_KINDS[int(self._kind[s - 1])]) for s in self.steps()]


def _pick(items: list, u: float):
    return items[min(int(u * len(items)), len(items) - 1)]


def apply_shock(world: World, shock: ScheduledShock, condition: Condition) -> None:
    """Change the world as the shock says and queue the agent's notice according to observability."""
    mag = MAGNITUDES[condition.pe_mag]
    full, vague = _SHOCKS[shock.kind](world, shock, mag)
    s = world.state
    s.recent_shocks.append(ShockRecord(step=shock.step, day=s.day, kind=shock.kind, description=full))
    del s.recent_shocks[:-RECENT_SHOCKS_KEPT]
    mode = condition.observability
    if mode == "full":
        s.pending_notices.append(Notice(deliver_step=shock.step, text=full))
    elif mode == "delayed":
        s.pending_notices.append(Notice(deliver_step=shock.step + condition.notice_delay_steps, text=full))
    elif mode == "partial" and shock.notice_u < PARTIAL_NOTICE_SHARE:
        s.pending_notices.append(Notice(deliver_step=shock.step, text=vague))
    # hidden: no notice; the agent sees only outcomes.


def _effect(world: World, shock: ScheduledShock, mag: Magnitude, kind: str, **fields) -> Effect:
    s = world.state
    effect = Effect(effect_id=f"E{shock.step}", kind=kind, until_day=s.day + mag.duration_days, **fields)
    s.effects.append(effect)
    return effect


def _temporal(world: World, shock: ScheduledShock, mag: Magnitude) -> tuple[str, str]:
    s = world.state
    inbound = sorted(s.purchase_orders, key=lambda p: p.po_id)
    if inbound:
        po = _pick(inbound, shock.target_u)
        old = po.arrival_day
        if shock.sign_u < EARLY_SHARE:
            po.arrival_day = max(s.day + 1, old - math.ceil(mag.shift_days / 2))
        else:
            po.arrival_day = old + mag.shift_days
        return (
            f"{po.supplier_id}: {po.po_id} now arrives on day {po.arrival_day} instead of day {old}.",
            f"{po.supplier_id} reports a change in the arrival of {po.po_id}.",
        )
    supplier = _pick(sorted(world.supplier_ids), shock.target_u)
    e = _effect(world, shock, mag, "lead_time", supplier_id=supplier, days=mag.shift_days)
    return (
        f"{supplier}: lead times are {mag.shift_days} days longer until day {e.until_day}.",
        f"{supplier} reports changed lead times.",
    )


def _quantity(world: World, shock: ScheduledShock, mag: Magnitude) -> tuple[str, str]:
    s = world.state
    inbound = sorted(s.purchase_orders, key=lambda p: p.po_id)
    if inbound:
        po = _pick(inbound, shock.target_u)
        po.delivered_quantity = math.floor(po.delivered_quantity * (1 - mag.fraction))
        return (
            f"{po.supplier_id}: {po.po_id} will deliver {po.delivered_quantity} of {po.quantity} units "
            f"(missing units refunded on arrival).",
            f"{po.supplier_id} reports a short shipment on {po.po_id}.",
        )
    sku = _pick(world.sku_order, shock.target_u)
    e = _effect(world, shock, mag, "demand", sku_id=sku, factor=1 + 4 * mag.fraction)
    return (
        f"Demand for {sku} is running {e.factor:.1f}x normal until day {e.until_day}.",
        f"Demand for {sku} has changed.",
    )


def _cost(world: World, shock: ScheduledShock, mag: Magnitude) -> tuple[str, str]:
    supplier, sku = _pick(list(world.offers), shock.target_u)
    e = _effect(world, shock, mag, "price", supplier_id=supplier, sku_id=sku, factor=1 + mag.fraction)
    return (
        f"{supplier}: the price of {sku} rises {mag.fraction:.0%} until day {e.until_day}.",
        f"{supplier} has changed the price of {sku}.",
    )


def _causal(world: World, shock: ScheduledShock, mag: Magnitude) -> tuple[str, str]:
    if shock.variant_u < 0.6:
        supplier, sku = _pick(list(world.offers), shock.target_u)
        e = _effect(world, shock, mag, "drop_sku", supplier_id=supplier, sku_id=sku)
        return (
            f"{supplier} has stopped selling {sku} until day {e.until_day}.",
            f"{supplier} has changed its range.",
        )
    tool = _pick(list(DOWN_TOOLS), shock.target_u)
    e = _effect(world, shock, mag, "tool_down", tool=tool)
    return f"The {tool} system is down until day {e.until_day}.", f"The {tool} system is having problems."


def _rule(world: World, shock: ScheduledShock, mag: Magnitude) -> tuple[str, str]:
    if shock.variant_u < 0.5:
        supplier = _pick(sorted(world.supplier_ids), shock.target_u)
        e = _effect(world, shock, mag, "min_order", supplier_id=supplier, factor=mag.rule_factor)
        return (
            f"{supplier}: minimum orders are {mag.rule_factor:g}x higher until day {e.until_day}.",
            f"{supplier} has changed its order terms.",
        )
    kind = "storage_fee" if shock.variant_u < 0.75 else "daily_fee"
    e = _effect(world, shock, mag, kind, factor=mag.rule_factor)
    label = kind.replace("_", " ")
    return f"The {label} is {mag.rule_factor:g}x higher until day {e.until_day}.", f"The {label} has changed."


_SHOCKS = {"temporal": _temporal, "quantity": _quantity, "cost": _cost, "causal": _causal, "rule": _rule}
