from __future__ import annotations

import os
import uuid

import pytest


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("TKR_TEST_REDIS_URL")
    if not url:
        pytest.skip("TKR_TEST_REDIS_URL is not set: these tests need a Redis server such as redis://127.0.0.1:6379/0")
    return url


@pytest.fixture
def channel() -> str:
    return f"tkr-test-{uuid.uuid4().hex[:12]}"
