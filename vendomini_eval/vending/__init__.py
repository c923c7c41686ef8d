"""A second world: a deterministic re-implementation of Vending-Bench (Backlund & Petersson 2025), a vending
machine business with slots, prices, suppliers, weather and seasons (docs/METHOD.md, "Vending-Bench world")."""
