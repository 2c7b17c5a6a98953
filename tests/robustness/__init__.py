"""Robustness tests."""
