"""Inspect model providers of the suite (the Inspect layer): `vendomini/<policy>`, scripted policies as models."""
