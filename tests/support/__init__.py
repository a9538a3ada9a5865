"""Helpers shared by the tests (never shipped)."""
