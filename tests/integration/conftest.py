from __future__ import annotations

import pytest

from simulators.broker import Mosquitto
from tests.servers import postgres_server


@pytest.fixture(scope="session")
def postgres_url():
    with postgres_server() as url:
        yield url


@pytest.fixture
def mosquitto(tmp_path):
    with Mosquitto(data_dir=tmp_path / "mosquitto") as broker:
        yield broker
