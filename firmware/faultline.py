# Start-up: settings, the gateway link, the pipeline and the sampler; then back to the REPL.
import gc

import micropython

import faultline_config as cfg
import hw
import packets
import pipeline
import settings

sampler = None


def _model():
    try:
        import tflm_model
    except ImportError:
        return None
    return tflm_model


def banner():
    """One line a flashing tool can check: version, board, the arch it was built for, config."""
    return "faultline %d.%d.%d board=%s arch=%s config=%s" % (pipeline.VERSION + (cfg.BOARD, cfg.MPY_ARCH, cfg.CONFIG_DIGEST))


def start():
    """Boot the tier-1 pipeline; returns at once so the REPL stays free."""
    global sampler
    if hasattr(micropython, "alloc_emergency_exception_buf"):
        micropython.alloc_emergency_exception_buf(128)
    current = settings.Settings()
    current.load()
    link = packets.Link(hw.gateway(), cfg.NODE_ID)
    running = pipeline.Pipeline(current, link, _model(), hw.safety_output(), hw.watchdog())
    pipeline.running = running
    port = hw.command_port()
    if port is not None:
        import commands

        running.commands = commands.Commands(running, port)
    running.announce()
    sampler = hw.sampler(running)
    gc.collect()
    print(banner())
    print("faultline: tier2=%s settings=%s" % ("model" if running.model is not None else "none", settings.SOURCES[current.source]))
    if current.problem:
        print("faultline: " + current.problem[:68])
    return running


def service():
    """Let the pipeline catch up (the unix port's sampler needs calling; a board's runs by itself)."""
    return sampler is not None and sampler.service()
