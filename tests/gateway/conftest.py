"""Gateway fixtures: a real mosquitto (authentication on, no anonymous clients) per test, and its subscriber."""

from __future__ import annotations

import pytest
from gateway_support import Broker, Subscriber, have_mosquitto


@pytest.fixture
def broker(tmp_path):
    if not have_mosquitto():
        pytest.skip("needs Debian mosquitto and mosquitto-clients: `make setup` (or apt-get install mosquitto mosquitto-clients)")
    directory = tmp_path / "broker"
    directory.mkdir()
    server = Broker(directory)
    server.start()
    yield server
    server.stop(kill=True)


@pytest.fixture
def subscriber_factory():
    """Subscribers for brokers a test starts itself."""
    made = []

    def make(server):
        made.append(Subscriber(server))
        return made[-1]

    yield make
    for client in made:
        client.close()


@pytest.fixture
def subscriber(broker):
    client = Subscriber(broker)
    yield client
    client.close()
