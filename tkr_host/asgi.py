"""``hypercorn --config FILE tkr_host.asgi:app`` with ``TKR_CONFIG=FILE``.

Hypercorn does not tell the app which file it read, so the host reads the
same file again from ``TKR_CONFIG``.
"""

from __future__ import annotations

import os

from tkr_host.app import create_app
from tkr_host.config import load_settings

app = create_app(load_settings(os.environ.get("TKR_CONFIG") or None))
