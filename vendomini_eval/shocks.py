"""Shocks: a schedule drawn from the run seed before the episode, and what each shock does to the world.

Common random numbers: every step gets the same uniform draws whatever the condition's p_shock, and a step
fires when its draw is below p_shock. The kind and the variant of a shock come from its own draws, so the
schedule depends only on the seed and the condition, never on the agent, and the shocks at p_shock = 0.1 are
a subset of those at 0.3 for the same seed. Targets (which purchase order, which offer) are picked from the
state when the shock fires, by the pre-drawn target uniform; a variant with no target there (a delay with
nothing inbound) is void: it changes nothing and sends no notice.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vendomini_eval.condition import Condition
from vendomini_eval.world.state import Effect, Notice, PurchaseOrder, ShockRecord
from vendomini_eval.world.world import RECENT_SHOCKS_KEPT, World

SHOCK_KINDS = ("temporal", "short_shipment", "demand_surge", "cost", "causal", "rule")

# Weights over SHOCK_KINDS. "realistic" keeps the original study's temporal .4 / quantity .3 / causal+rule .3
# shape and gives cost shocks a share taken evenly from each; the quantity share is split so that the harmful
# short shipment is the larger part and the windfall (a demand surge) the smaller (docs/METHOD.md, "Shocks").
TYPE_MIXES: dict[str, tuple[float, ...]] = {
    "realistic": (0.35, 0.15, 0.10, 0.15, 0.15, 0.10),
    "temporal_only": (1.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    "quantity_only": (0.0, 0.6, 0.4, 0.0, 0.0, 0.0),
    "causal_only": (0.0, 0.0, 0.0, 0.0, 0.5, 0.5),
    "uniform": (1 / 6,) * 6,
}

# Variants of each kind, drawn from the shock's variant (and, for a delivery's direction, sign) uniform.
VARIANTS = {
    "temporal": ("delay", "early", "lead_time"),
    "short_shipment": ("short_shipment",),
    "demand_surge": ("demand_surge",),
    "cost": ("price_rise",),
    "causal": ("drop_sku", "tool_down"),
    "rule": ("min_order", "storage_fee", "daily_fee"),
}
DELIVERY_SHARE = 0.6  # share of temporal shocks that move one inbound delivery; the rest raise lead times
EARLY_SHARE = 0.25  # share of those that bring the delivery forward (by the sign uniform)


@dataclass(frozen=True, slots=True)
class Magnitude:
    shift_days: int
    """Temporal: days a delivery is delayed or lead times grow (early deliveries move by half, rounded up)."""
    fraction: float
    """Short shipment: share of a delivery that goes missing. Demand surge: demand x (1 + 4 x fraction).
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

PARTIAL_NOTICE_SHARE = 0.5  # share of shocks announced under partial observability
DOWN_TOOLS = ("order", "check_inventory", "check_catalogue")


def shock_variant(kind: str, variant_u: float, sign_u: float) -> str:
    """The variant of a shock, from its own draws only: never from the state, so it is the same for every
    policy on a seed."""
    if kind == "temporal":
        if variant_u >= DELIVERY_SHARE:
            return "lead_time"
        return "early" if sign_u < EARLY_SHARE else "delay"
    if kind == "causal":
        return "drop_sku" if variant_u < 0.6 else "tool_down"
    if kind == "rule":
        return "min_order" if variant_u < 0.5 else "storage_fee" if variant_u < 0.75 else "daily_fee"
    (variant,) = VARIANTS[kind]
    return variant


@dataclass(frozen=True, slots=True)
class ScheduledShock:
    step: int
    kind: str
    variant_u: float
    target_u: float
    sign_u: float
    notice_u: float

    @property
    def variant(self) -> str:
        return shock_variant(self.kind, self.variant_u, self.sign_u)


@dataclass(frozen=True, slots=True)
class AppliedShock:
    """What a fired shock did, for the episode's trace and its count of void shocks."""

    kind: str
    variant: str
    void: bool
    """The variant found no target (e.g. a delay with nothing inbound): the world is unchanged, no notice."""
    description: str


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

    def listing(self) -> list[tuple[int, str, str]]:
        """(step, kind, variant) of every scheduled shock: the schedule's identity, for comparing runs."""
        return [(s, shock.kind, shock.variant) for s in self.steps() if (shock := self.at(s))]


@dataclass(frozen=True, slots=True)
class ShockChange:
    """What a shock changed: the full and the vague notice, and the revision of a purchase order's promise
    (po_id and promised_day or promised_quantity) that the full notice carries."""

    full: str
    vague: str
    revision: dict[str, Any] = field(default_factory=dict)


def pick(items: list, u: float):
    """The item a target uniform picks."""
    return items[min(int(u * len(items)), len(items) - 1)]


VariantEffect = Callable[[Any, ScheduledShock, Magnitude], "ShockChange | None"]
"""What one variant does to a world: the change it made (None: no target, the shock is void)."""


def apply_shock(
    world: Any, shock: ScheduledShock, condition: Condition, effects: Mapping[str, VariantEffect] | None = None
) -> AppliedShock:
    """Change the world as the shock says (by `effects`, the world's table of variants; default: the warehouse's)
    and queue the agent's notice according to observability. The world's state keeps `recent_shocks` and
    `pending_notices`."""
    variant = shock.variant
    change = (VARIANT_EFFECTS if effects is None else effects)[variant](world, shock, MAGNITUDES[condition.pe_mag])
    if change is None:
        return AppliedShock(shock.kind, variant, True, f"void {variant}: no inbound purchase order it could change")
    s = world.state
    s.recent_shocks.append(ShockRecord(step=shock.step, day=s.day, kind=shock.kind, description=change.full))
    del s.recent_shocks[:-RECENT_SHOCKS_KEPT]
    mode = condition.observability
    if mode == "full":
        s.pending_notices.append(Notice(deliver_step=shock.step, text=change.full, **change.revision))
    elif mode == "delayed":
        deliver_step = shock.step + condition.notice_delay_steps
        s.pending_notices.append(Notice(deliver_step=deliver_step, text=change.full, **change.revision))
    elif mode == "partial" and shock.notice_u < PARTIAL_NOTICE_SHARE:
        # A vague notice says what changed but not how: it revises nothing the agent was promised.
        s.pending_notices.append(Notice(deliver_step=shock.step, text=change.vague))
    # hidden: no notice; the agent sees only outcomes.
    return AppliedShock(shock.kind, variant, False, change.full)


def _effect(world: World, shock: ScheduledShock, mag: Magnitude, kind: str, **fields) -> Effect:
    s = world.state
    effect = Effect(effect_id=f"E{shock.step}", kind=kind, until_day=s.day + mag.duration_days, **fields)
    s.effects.append(effect)
    return effect


def _inbound(world: World) -> list[PurchaseOrder]:
    return sorted(world.state.purchase_orders, key=lambda p: p.po_id)


def _moved(po: Any, old_day: int) -> ShockChange:
    return ShockChange(
        f"{po.supplier_id}: {po.po_id} now arrives on day {po.arrival_day} instead of day {old_day}.",
        f"{po.supplier_id} reports a change in the arrival of {po.po_id}.",
        {"po_id": po.po_id, "promised_day": po.arrival_day},
    )


def delay_one(inbound: Sequence[Any], shock: ScheduledShock, mag: Magnitude) -> ShockChange | None:
    """Delay one of the undelivered purchase orders `inbound` (in po_id order; each with po_id, supplier_id and
    arrival_day, in either world) by shift_days; None when there is none."""
    if not inbound:
        return None
    po = pick(list(inbound), shock.target_u)
    old = po.arrival_day
    po.arrival_day = old + mag.shift_days
    return _moved(po, old)


def bring_forward_one(inbound: Sequence[Any], today: int, shock: ScheduledShock, mag: Magnitude) -> ShockChange | None:
    """Bring one of `inbound` forward by half of shift_days (rounded up); only a delivery due after tomorrow can
    come earlier, since the earliest any delivery arrives is tomorrow."""
    tomorrow = today + 1
    movable = [po for po in inbound if po.arrival_day > tomorrow]
    if not movable:
        return None
    po = pick(movable, shock.target_u)
    old = po.arrival_day
    po.arrival_day = max(tomorrow, old - math.ceil(mag.shift_days / 2))
    return _moved(po, old)


def _delay(world: World, shock: ScheduledShock, mag: Magnitude) -> ShockChange | None:
    return delay_one(_inbound(world), shock, mag)


def _early(world: World, shock: ScheduledShock, mag: Magnitude) -> ShockChange | None:
    return bring_forward_one(_inbound(world), world.state.day, shock, mag)


def _lead_time(world: World, shock: ScheduledShock, mag: Magnitude) -> ShockChange:
    supplier = pick(sorted(world.supplier_ids), shock.target_u)
    e = _effect(world, shock, mag, "lead_time", supplier_id=supplier, days=mag.shift_days)
    return ShockChange(
        f"{supplier}: lead times are {mag.shift_days} days longer until day {e.until_day}.",
        f"{supplier} reports changed lead times.",
    )


def _short_shipment(world: World, shock: ScheduledShock, mag: Magnitude) -> ShockChange | None:
    return short_ship_one(_inbound(world), shock, mag)


def short_ship_one(inbound: Sequence[Any], shock: ScheduledShock, mag: Magnitude) -> ShockChange | None:
    """One of `inbound` (each with quantity and delivered_quantity too) will deliver `fraction` fewer units."""
    shippable = [po for po in inbound if po.delivered_quantity > 0]
    if not shippable:
        return None
    po = pick(shippable, shock.target_u)
    po.delivered_quantity = math.floor(po.delivered_quantity * (1 - mag.fraction))
    return ShockChange(
        f"{po.supplier_id}: {po.po_id} will deliver {po.delivered_quantity} of {po.quantity} units "
        f"(missing units refunded on arrival).",
        f"{po.supplier_id} reports a short shipment on {po.po_id}.",
        {"po_id": po.po_id, "promised_quantity": po.delivered_quantity},
    )


def _demand_surge(world: World, shock: ScheduledShock, mag: Magnitude) -> ShockChange:
    sku = pick(world.sku_order, shock.target_u)
    e = _effect(world, shock, mag, "demand", sku_id=sku, factor=1 + 4 * mag.fraction)
    return ShockChange(
        f"Demand for {sku} is running {e.factor:.1f}x normal until day {e.until_day}.",
        f"Demand for {sku} has changed.",
    )


def _price_rise(world: World, shock: ScheduledShock, mag: Magnitude) -> ShockChange:
    supplier, sku = pick(list(world.offers), shock.target_u)
    e = _effect(world, shock, mag, "price", supplier_id=supplier, sku_id=sku, factor=1 + mag.fraction)
    return ShockChange(
        f"{supplier}: the price of {sku} rises {mag.fraction:.0%} until day {e.until_day}.",
        f"{supplier} has changed the price of {sku}.",
    )


def _drop_sku(world: World, shock: ScheduledShock, mag: Magnitude) -> ShockChange:
    supplier, sku = pick(list(world.offers), shock.target_u)
    e = _effect(world, shock, mag, "drop_sku", supplier_id=supplier, sku_id=sku)
    return ShockChange(
        f"{supplier} has stopped selling {sku} until day {e.until_day}.", f"{supplier} has changed its range."
    )


def _tool_down(world: World, shock: ScheduledShock, mag: Magnitude) -> ShockChange:
    tool = pick(list(DOWN_TOOLS), shock.target_u)
    e = _effect(world, shock, mag, "tool_down", tool=tool)
    return ShockChange(f"The {tool} system is down until day {e.until_day}.", f"The {tool} system is having problems.")


def _min_order(world: World, shock: ScheduledShock, mag: Magnitude) -> ShockChange:
    supplier = pick(sorted(world.supplier_ids), shock.target_u)
    e = _effect(world, shock, mag, "min_order", supplier_id=supplier, factor=mag.rule_factor)
    return ShockChange(
        f"{supplier}: minimum orders are {mag.rule_factor:g}x higher until day {e.until_day}.",
        f"{supplier} has changed its order terms.",
    )


def _fee(kind: str):
    def raise_fee(world: World, shock: ScheduledShock, mag: Magnitude) -> ShockChange:
        e = _effect(world, shock, mag, kind, factor=mag.rule_factor)
        label = kind.replace("_", " ")
        return ShockChange(
            f"The {label} is {mag.rule_factor:g}x higher until day {e.until_day}.", f"The {label} has changed."
        )

    return raise_fee


VARIANT_EFFECTS: dict[str, VariantEffect] = {
    "delay": _delay,
    "early": _early,
    "lead_time": _lead_time,
    "short_shipment": _short_shipment,
    "demand_surge": _demand_surge,
    "price_rise": _price_rise,
    "drop_sku": _drop_sku,
    "tool_down": _tool_down,
    "min_order": _min_order,
    "storage_fee": _fee("storage_fee"),
    "daily_fee": _fee("daily_fee"),
}
