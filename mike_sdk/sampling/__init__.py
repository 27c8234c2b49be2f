"""Evaluating on a sample: seeded item positions (`--sample`), rounds to a target
interval width (`--target-ci`), and what a run will cost (`--pilot`, the dry run's table)."""
