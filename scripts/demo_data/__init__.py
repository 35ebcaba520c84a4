"""Builders of the parts of the embedded demo dataset (see scripts/build_demo_data.py)."""
