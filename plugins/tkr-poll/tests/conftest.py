"""Fixtures of tkr-poll's tests.

The host fixtures (``tkr_host``, ``tkr_client``, ``tkr_settings``…) and ``room``
(alice and bob in a session both joined) come from tkr-host's pytest plugin,
``tkr_host.testing``, loaded through its ``pytest11`` entry point.
"""
