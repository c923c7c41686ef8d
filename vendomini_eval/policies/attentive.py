"""The attentive heuristic: the competent routine, plus it reads the notices it is shown and acts on them.

A notice makes it look again (the purchase orders, and the catalogue when suppliers' terms may have changed);
where `check_orders` shows a revised promised day or quantity for one of its purchase orders still on its way,
it restates its delivery expectation with `revise_expectation`. Between two looks it takes at least one step of
its routine, so a stream of notices slows its business but cannot stop it. What it is told therefore changes
what it does and its PE: under hidden observability it never revises, under full it revises as soon as it is
told. This makes the observability factor testable on a scripted baseline (docs/METHOD.md, "The paired
observability design").
"""

from __future__ import annotations

from typing import Any

from vendomini_eval.policies.heuristic import HeuristicPolicy

REVISE = "revise_expectation"


class AttentivePolicy(HeuristicPolicy):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._expected: dict[str, tuple[int, int]] = {}  # po_id -> (delivery day, units) it last stated
        self._revisions: dict[str, tuple[int, int]] = {}  # po_id -> what check_orders now promises
        self._recheck: list[str] = []
        self._told = False  # a notice arrived that it has not looked into yet
        self._looked = False  # its last routine decision was to look again

    def observe(self, observation: dict[str, Any] | None) -> None:
        super().observe(observation)
        if observation and observation.get("notices"):
            self._told = True

    def _seen_order(self, result: dict[str, Any], args: dict[str, Any]) -> None:
        super()._seen_order(result, args)
        self._expected[result["po_id"]] = (result["promised_day"], args["quantity"])

    def _seen_check_orders(self, result: dict[str, Any], args: dict[str, Any]) -> None:
        super()._seen_check_orders(result, args)
        inbound = {po["po_id"]: po for po in result["purchase_orders"]}
        self._expected = {po_id: value for po_id, value in self._expected.items() if po_id in inbound}
        self._revisions = {po_id: value for po_id, value in self._revisions.items() if po_id in inbound}
        for po_id, (day, units) in self._expected.items():
            po = inbound[po_id]
            told = (po["promised_day"], po.get("promised_quantity", po["quantity"]))
            if told != (day, units):
                self._revisions[po_id] = told
                self._expected[po_id] = told

    def decide(self) -> tuple[str, dict[str, Any], dict[str, Any]]:
        if self._revisions and REVISE in self.context.tools:  # first, while the orders are still on their way
            po_id, (day, units) = self._revisions.popitem()
            args = {"po_id": po_id, "expected_delivery_day": day, "expected_quantity": units}
            return REVISE, args, {"success": True}
        if self._recheck:
            return self._check(self._recheck.pop(0))
        # Notices that arrive while it looks are looked into after one step of its routine: under a stream of
        # shocks it would otherwise only read and never run the business.
        if self._told and not self._looked:
            self._told, self._looked = False, True
            self._recheck = ["check_catalogue"]
            return self._check("check_orders")
        self._looked = False
        return super().decide()
