# diag.selftest(): a synthetic fault through a second, private pipeline on the board's own
# settings and code, checking that the fast path trips and a window is flagged. Imported
# only while it runs.
import array
import math

import fallback
import faultline
import faultline_config as cfg
import packets
import pipeline
from fastpath import ENERGY, PEAK
from micropython import const

SELFTEST_RING = const(128)  # transmit ring of the private pipeline's link: one frame, discarded anyway


class _Discard:
    def write(self, buf, at, n):
        return n


def _synthetic(limit, samples, fault_from):
    """A quiet 50 Hz hum, then from `fault_from` bursts ringing at 300 Hz, 4x the peak limit."""
    x = array.array("h", bytes(2 * samples))
    period = cfg.RATE_HZ // 25
    for i in range(samples):
        value = (limit // 8) * math.sin(2 * math.pi * 50 * i / cfg.RATE_HZ)
        if i >= fault_from:
            k = (i - fault_from) % period
            value += 4 * limit * math.exp(-k / 4) * math.sin(2 * math.pi * 300 * k / cfg.RATE_HZ)
        x[i] = max(-32768, min(32767, int(value)))
    return x


def run(live):
    """Feed a synthetic fault through a second pipeline on `live`'s settings; True if it trips."""
    fault_from = (cfg.SETTLE_BLOCKS + 1) * cfg.BLOCK + cfg.WINDOW
    total = fault_from + cfg.WINDOW + cfg.STRIDE
    total -= total % cfg.BLOCK
    signal = _synthetic(live.settings.peak_limits[0], total, fault_from)
    test = pipeline.Pipeline(live.settings, packets.Link(_Discard(), cfg.NODE_ID, SELFTEST_RING))
    for start in range(0, total, cfg.BLOCK):
        for i in range(start, start + cfg.BLOCK):
            test.write_sample(0, signal[i])
            test.commit_sample()
        test.process()
        faultline.service()
    test.flush()  # releases the windows' held decisions
    trip = -1
    decision = fallback.NORMAL
    for i in range(test.log_count):
        code = test.log_code[i]
        if test.log_kind[i] == pipeline.EVENT_ALERT and code & pipeline.RAISED_BIT and (code & ~pipeline.RAISED_BIT) in (PEAK, ENERGY) and trip < 0:
            trip = test.log_sample[i]
        if test.log_kind[i] == pipeline.EVENT_WINDOW and code > decision:
            decision = code
    passed = trip >= fault_from and decision != fallback.NORMAL
    if trip >= 0:
        print("fast path tripped %d samples after the fault began (limit %d)" % (trip - fault_from, live.settings.peak_limits[0]))
    else:
        print("fast path did NOT trip")
    print("window decision: %s" % fallback.DECISIONS[decision])
    print("selftest %s" % ("PASS" if passed else "FAIL"))
    return passed
