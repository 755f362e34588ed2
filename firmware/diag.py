# Diagnostics at the REPL, for a person on the factory floor:
#   import diag
#   diag.status()  diag.health()  diag.last(10)  diag.thresholds()  diag.sensor()
#   diag.set_threshold("kurtosis.fault", 1500)  diag.selftest()
# Output fits 80 columns. Long work yields to the pipeline (faultline.service) between
# blocks, so nothing here holds sampling up for longer than one block.
import gc
import time

import fallback
import faultline
import faultline_config as cfg
import micropython
import pipeline
import settings
from fastpath import DISCONNECTED, RULE_NAMES, SATURATED, SATURATED_TOTAL

SOURCES = ("built-in defaults", "config.json", "built-in defaults: config.json is corrupt",
           "built-in defaults: config.json is from another build")


STOPPED = ("pipeline  STOPPED: a soft reset into the raw REPL (mpremote without 'resume')",
           "          does not run main.py. Start it: faultline.start()",
           "          Reach a running board: mpremote connect PORT resume exec ...")


def _running():
    if pipeline.running is None:
        raise RuntimeError("faultline is not running: call faultline.start() (main.py does at boot)")
    return pipeline.running


def _duration(ms):
    seconds = ms // 1000
    return "%dh%02dm%02ds" % (seconds // 3600, seconds // 60 % 60, seconds % 60)


@micropython.viper
def _mean(ring: ptr16, n: int) -> int:
    total = 0
    for i in range(n):
        total += (int(ring[i]) ^ 0x8000) - 0x8000
    return total // n


def status():
    """What this board is running and how it is set up (or that it is stopped, and how to start it)."""
    print(faultline.banner())
    p = pipeline.running
    if p is None:
        for line in STOPPED:
            print(line)
        return
    samples = p.read
    print("uptime    %s   samples %d (%d Hz x %d channel%s)" % (
        _duration(time.ticks_diff(time.ticks_ms(), p.started_ms)), samples, cfg.RATE_HZ, cfg.CHANNELS,
        "" if cfg.CHANNELS == 1 else "s"))
    print("settings  %s" % SOURCES[p.settings.source])
    if p.settings.problem:
        print("          " + p.settings.problem[:68])
    if p.model is None:
        print("tier 2    fallback heuristic: no model runs on this board")
        print("          " + cfg.NO_MODEL_REASON[:68])
    else:
        m = p.model
        print("tier 2    model %s (%s), sha256 %s" % (m.NAME[:24], m.KIND, m.SHA256[:12]))
        if not cfg.MODEL_DECIDES:
            gate = "advisory: the fallback decides every window"
        elif m.KIND == "classifier":
            gate = "fallback below %d%% confidence" % (cfg.MIN_CONFIDENCE_Q8 * 100 // 256)
        else:
            gate = "fault at error >= %d" % p.settings.model_limit
        print("          %s; decided %d, unsure %d, late %d, errors %d" % (
            gate, p.model_decisions, p.model_unsure, p.model_late, p.tier2_errors))
    print("windows   %d of %d samples every %d" % (p.windows, cfg.WINDOW, cfg.STRIDE))
    print("link      packets sent %d, dropped %d, %d bytes; %d RESENDs answered" % (
        p.link.sent, p.link.dropped, p.link.bytes, p.link.resends))
    print("          %d withheld: their channel's sensor was bad" % p.withheld)
    for channel in p.channels:
        result = channel.result
        tripped = [RULE_NAMES[r] for r in range(len(RULE_NAMES)) if channel.fast.tripped[r]]
        print("ch%d       last window %s (score %d.%02d)  fast path %s" % (
            channel.index, fallback.DECISIONS[result[fallback.DECISION]], result[fallback.SCORE] // 256,
            result[fallback.SCORE] % 256 * 100 // 256, ("TRIPPED: " + ", ".join(tripped)) if tripped else "ok"))


def _sensor_state(fast):
    bad = [RULE_NAMES[r].upper() for r in range(SATURATED, DISCONNECTED + 1) if fast.tripped[r]]
    return "+".join(bad) if bad else "ok"


def health():
    """Is the loop keeping up: timing, overruns, errors, heap, sensors."""
    p = _running()
    budget = cfg.BLOCK * 1_000_000 // cfg.RATE_HZ
    print("loop      p50 %d us  p99 %d us  max %d us per %d-sample block (of %d us)" % (
        p.percentile_us(50), p.percentile_us(99), p.worst_us, cfg.BLOCK, budget))
    print("overruns  %d samples lost   tier-2 errors %d" % (p.overruns, p.tier2_errors))
    print("heap      %d bytes free, %d used" % (gc.mem_free(), gc.mem_alloc()))
    print("watchdog  %s" % ("fed every block" if p.watchdog is not None else "none on this port"))
    for channel in p.channels:
        print("ch%d       sensor %s" % (channel.index, _sensor_state(channel.fast)))
    if p.safety is not None:
        print("safety    output %s" % ("HIGH (a fast-path limit is tripped)" if p.safety.value() else "low"))


def last(n=10):
    """The latest n alerts, flagged windows and summaries of normal running, newest first."""
    p = _running()
    n = min(n, p.log_count)
    print("%10s  %-6s %-3s %-22s %10s" % ("sample", "kind", "ch", "what", "value"))
    for back in range(1, n + 1):
        i = (p.log_next - back) % cfg.EVENT_LOG
        code = p.log_code[i]
        kind = p.log_kind[i]
        if kind == pipeline.EVENT_ALERT:
            kind, what = "alert", "%s %s" % (RULE_NAMES[code & ~pipeline.RAISED_BIT], "raised" if code & pipeline.RAISED_BIT else "cleared")
        elif kind == pipeline.EVENT_WINDOW:
            kind, what = "window", fallback.DECISIONS[code]
        else:
            kind, what = "normal", "windows summarised (count)"
        print("%10d  %-6s %-3d %-22s %10d" % (p.log_sample[i], kind, p.log_channel[i], what, p.log_value[i]))
    if n == 0:
        print("(nothing yet)")


def thresholds():
    """Every threshold and limit in force, per channel."""
    p = _running()
    header = "%-18s" % "name" + "".join("%12s" % ("ch%d" % c) for c in range(cfg.CHANNELS))
    print(header)
    for rule, name in enumerate(settings.threshold_names()):
        print("%-18s" % name + "".join("%12d" % p.settings.thresholds[c][rule] for c in range(cfg.CHANNELS)))
    print("%-18s" % "fast.peak" + "".join("%12d" % v for v in p.settings.peak_limits))
    print("%-18s" % "fast.energy" + "".join("%12d" % v for v in p.settings.energy_limits))
    if p.model is not None and p.model.KIND == "reconstruction":
        print("%-18s%12d" % ("model.limit", p.settings.model_limit))
    print("from %s" % SOURCES[p.settings.source])


def set_threshold(name, value, channel=0):
    """Change one threshold or limit ('kurtosis.fault', 'fast.peak'...), checked, then saved atomically."""
    p = _running()
    try:
        p.settings.set_value(name, value, channel, p.running_rms(channel) if isinstance(channel, int) else 0)
    except settings.Refused as refusal:
        raise ValueError(str(refusal))  # at the REPL, a plain ValueError with the reason
    p.config_hash = p.settings.digest()
    print("%s = %d on ch%d, saved to %s" % (name, value, channel, settings.FILE))


def selftest():
    """Feed a synthetic fault through a second pipeline on this board's settings; True if it trips."""
    import sys

    gc.collect()  # a second pipeline needs room: collect the REPL's garbage first
    import selftest as harness

    try:
        return harness.run(_running())
    finally:
        del sys.modules["selftest"]  # give its memory back


def sensor():
    """Per channel: DC offset, noise floor (RMS of the last filtered window), saturation count."""
    p = _running()
    print("%-4s %12s %14s %14s  %s" % ("ch", "dc offset", "noise rms", "saturated", "state"))
    for channel in p.channels:
        state = _sensor_state(channel.fast)
        print("ch%-2d %12d %14d %14d  %s" % (channel.index, _mean(channel.ring, pipeline.RING), channel.result[fallback.RMS],
                                           channel.fast.state[SATURATED_TOTAL], state))
