"""Failure-mode bundles: one package per failure mode (spec, scenario, tests)."""
