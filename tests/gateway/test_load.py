"""The load benchmark, small, as a correctness test: outages of the broker and SIGKILLs of the gateway
under a fault storm lose nothing, and every repeat is flagged. Speed is printed, never asserted."""

from __future__ import annotations

import pytest
from gateway_support import have_mosquitto

from hostgen.gateway.bench import format_bench, run_bench


@pytest.mark.slow  # a benchmark run, about 20 s: `make test` only
def test_small_benchmark_outages_and_kills_lose_nothing(capsys):
    if not have_mosquitto():
        pytest.skip("needs Debian mosquitto: `make setup`")
    # the broker SIGKILLed: what it acknowledged but had not saved comes again from the gateway's redelivery window
    results = run_bench(boards=4, rates=[1.0], seconds=1.5, outages=1, outage_s=1.0, kills=1, app_path=None, log=print,
                        outage_signal="kill")
    print(format_bench(results))
    ledger = results["gateway_ledger"]
    assert results["phases"][0]["lost"] == 0 and results["outages"]["lost"] == 0, results
    # a SIGKILL between reading bytes from a port and committing them loses those packets: never silently
    assert results["gateway_kills"]["lost"] <= ledger["missing"], (results["gateway_kills"], ledger)
    for faults in (results["outages"], results["gateway_kills"]):
        assert faults["duplicated_unflagged"] == 0, faults
    assert ledger["received"] == ledger["acknowledged"] and ledger["spooled"] == 0 and ledger["dropped"] == 0, ledger
