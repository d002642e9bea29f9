from __future__ import annotations

import pytest

from tests.servers import postgres_server


@pytest.fixture(scope="session")
def postgres_url():
    with postgres_server() as url:
        yield url
