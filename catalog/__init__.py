"""Data shipped with the planner: accelerators, model presets, calibration (see README)."""
