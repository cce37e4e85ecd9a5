"""Prefect flows: they only wire the stages together."""
