"""Fixtures of tkr-flags' tests: the host fixtures come from tkr-host's pytest plugin."""
