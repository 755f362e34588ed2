"""Signals to work on: the synthetic machine population, and reading users' recordings and representative data."""
