"""The businesses an episode can run, behind one interface: the warehouse (`world/`) and the vending machine
(`vending/`, a Vending-Bench-style world). The condition's `world` knob picks one.

`Episode.step` is the same for both: it asks the business which tools a condition offers and how each is
declared, how to build the world from the run seed, whether a productive action is available, whether a valid
call moved the business, how time advances after a step, what the agent was told of its stock, and what each
shock variant does. Everything else (cards, PE, the detector, gates, the trace) is shared.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vendomini_eval.actionability import PROGRESS_TOOLS, productive_action_available
from vendomini_eval.condition import Condition
from vendomini_eval.results import CounterTotals, VendingTotals
from vendomini_eval.shocks import VARIANT_EFFECTS, VariantEffect
from vendomini_eval.vending import shocks as vending_shocks
from vendomini_eval.vending.catalogue import START_CASH_CENTS, default_rules, new_state
from vendomini_eval.vending.state import Rules
from vendomini_eval.vending.tools import TOOLS as VENDING_SPECS
from vendomini_eval.vending.world import VendingWorld
from vendomini_eval.world.actions import ToolSpec
from vendomini_eval.world.setup import build_rules, new_world
from vendomini_eval.world.tools import TOOL_SPECS, available_tools
from vendomini_eval.world.world import World


@dataclass(frozen=True, slots=True)
class Business:
    name: str
    specs: Mapping[str, ToolSpec]
    """Every tool of this world, declared once."""
    tools: Callable[[Condition], tuple[str, ...]]
    """The tools a condition offers, in a stable order."""
    rules: Callable[[Condition], Any]
    """The rules a condition's world enforces (its `Rules`: start cash, fees, ...), as the system prompt states them."""
    build: Callable[[Condition, int, np.random.Generator, np.random.Generator], Any]
    """The world of a run: (condition, run seed, catalogue stream, demand stream)."""
    passive_tools: frozenset[str]
    """Tools that only let time pass: never an attempt (the detector counts them as passive)."""
    actionable: Callable[[Any], bool]
    """Whether a productive action is available in the world's current state (docs/METHOD.md, "Actionability")."""
    progress: Callable[[Any, str, dict[str, Any]], bool]
    """Whether a valid call (tool, result) moved the business."""
    advance: Callable[[Any, int, str], Sequence[Any]]
    """Time after a step's action (world, step, tool): the purchase orders delivered in this step (each with
    po_id, arrival_day, delivered_quantity and promised_quantity), for the delivery predictions."""
    units_in_stock: Callable[[Any], int]
    told_units: Callable[[int, str, dict[str, Any], int, int, Sequence[Any]], int]
    """The units in stock as the agent was told, after a valid call: (told before, tool, result, units before the
    call, units after it, deliveries of the step)."""
    shock_effects: Mapping[str, VariantEffect]
    totals: Callable[[Any], dict[str, Any]]
    """The run summary's fields of the world's counters (`EpisodeSummary.counters`, and the world's own)."""


# ----- the warehouse -------------------------------------------------------------------------------------------
def _warehouse_world(condition: Condition, seed: int, catalogue: np.random.Generator, demand: np.random.Generator):
    return World(new_world(condition, catalogue), demand)


def _warehouse_advance(world: World, step: int, tool: str) -> Sequence[Any]:
    return world.end_day() if step % world.state.rules.steps_per_day == 0 else []


def _warehouse_totals(world: World) -> dict[str, Any]:
    return {"counters": CounterTotals.model_validate(world.state.counters.model_dump())}


def _warehouse_told(told: int, tool: str, result: dict[str, Any], before: int, after: int, deliveries) -> int:
    """The last count the agent read (check_inventory, reset's briefing), moved by its own shipments and by
    deliveries as promised to it: a hidden short shipment is a PE, not a contradiction of what it was told."""
    shown = result.get("briefing", result)
    if "units_in_stock" in shown:
        told = shown["units_in_stock"]
    elif tool == "ship":
        told += after - before
    return told + sum(d.promised_quantity for d in deliveries)


WAREHOUSE = Business(
    name="warehouse",
    specs=TOOL_SPECS,
    tools=available_tools,
    rules=build_rules,
    build=_warehouse_world,
    passive_tools=frozenset({"wait"}),
    actionable=productive_action_available,
    progress=lambda world, tool, result: tool in PROGRESS_TOOLS,
    advance=_warehouse_advance,
    units_in_stock=lambda world: sum(world.state.stock.values()),
    told_units=_warehouse_told,
    shock_effects=VARIANT_EFFECTS,
    totals=_warehouse_totals,
)


# ----- the vending machine -------------------------------------------------------------------------------------
VENDING_TOOLS = ("check_inventory", "check_money", "check_orders", "list_suppliers", "order", "restock", "set_price",
                 "collect_cash", "end_day")  # fmt: skip
VENDING_MEMORY = {
    "none": (),
    "basic": ("write_scratchpad", "read_scratchpad", "kv_set", "kv_get", "kv_delete", "kv_list"),
    "full": ("write_scratchpad", "read_scratchpad", "kv_set", "kv_get", "kv_delete", "kv_list", "add_note",
             "search_notes"),
}  # fmt: skip


def _vending_tools(condition: Condition) -> tuple[str, ...]:
    """The business tools, revise_expectation where the agent states predictions, then the memory tools."""
    names = list(VENDING_TOOLS)
    if condition.prediction_mode != "none":
        names.append("revise_expectation")
    return (*names, *VENDING_MEMORY[condition.memory_tools])


def vending_rules(condition: Condition) -> Rules:
    """The machine's rules; `initial_cash` replaces the $500 start."""
    return default_rules(START_CASH_CENTS if condition.initial_cash is None else round(condition.initial_cash * 100))


def _vending_world(condition: Condition, seed: int, catalogue, demand) -> VendingWorld:
    """The world draws its catalogue and each day's demand from the run seed itself, (seed, stream, day)."""
    return VendingWorld(new_state(seed, vending_rules(condition).start_cash_cents))


def _vending_totals(world: VendingWorld) -> dict[str, Any]:
    """The machine's counters in full (`vending`) and, in `counters`, the ones both worlds share (money by cause,
    units delivered and sold)."""
    counters = world.state.counters.model_dump()
    last_sale = counters["last_sale_day"]
    return {
        "world": "vending",
        "counters": CounterTotals.model_validate({k: counters[k] for k in CounterTotals.model_fields if k in counters}),
        "vending": VendingTotals.model_validate(counters),
        # Days until sales stop: through the last day with a sale (0: nothing was ever sold).
        "days_until_sales_stop": 0 if last_sale is None else last_sale + 1,
    }


def _vending_told(told: int, tool: str, result: dict[str, Any], before: int, after: int, deliveries) -> int:
    """The last count the agent read, moved by each day's end, whose result states every change of stock (units
    sold, expired and delivered)."""
    if "units_in_stock" in result:
        return result["units_in_stock"]
    return told + (after - before) if tool == "end_day" else told


VENDING = Business(
    name="vending",
    specs=VENDING_SPECS,
    tools=_vending_tools,
    rules=vending_rules,
    build=_vending_world,
    passive_tools=frozenset({"end_day"}),
    actionable=lambda world: world.productive_action_available(),
    progress=lambda world, tool, result: world.is_progress(tool, result),
    advance=lambda world, step, tool: world.last_deliveries if tool == "end_day" else (),
    units_in_stock=lambda world: world.units_in_stock(),
    told_units=_vending_told,
    shock_effects=vending_shocks.VARIANT_EFFECTS,
    totals=_vending_totals,
)

BUSINESSES = {business.name: business for business in (WAREHOUSE, VENDING)}


def business_of(condition: Condition) -> Business:
    return BUSINESSES[condition.world]


def tool_arguments(business: Business) -> dict[str, tuple[str, ...]]:
    """Every tool's argument names: what a gate policy's rules may name."""
    return {name: tuple(a.name for a in spec.arguments) for name, spec in business.specs.items()}
