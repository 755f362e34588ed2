# Start-up: settings, the gateway link, the pipeline and the sampler; then back to the REPL.
import gc

import faultline_config as cfg
import hw
import micropython
import packets
import pipeline
import settings

sampler = None


def _model():
    """The build's tier-2 model module (the compiled engine, or a TFLM C module with its interface), if any."""
    if cfg.MODEL_MODULE is None:
        return None
    try:
        return __import__(cfg.MODEL_MODULE)
    except ImportError:
        return None


def firmware_dir():
    """The directory this firmware runs from: fw-<digest> once hostgen flash wrote it."""
    parts = __file__.split("/")
    return parts[-2] if len(parts) > 1 else "."


def banner():
    """One line a flashing tool can check: version, board, the arch it was built for, config, firmware."""
    return "faultline %d.%d.%d board=%s arch=%s config=%s %s" % (
        cfg.VERSION + (cfg.BOARD, cfg.MPY_ARCH, cfg.CONFIG_DIGEST, firmware_dir()))


def start():
    """Boot the tier-1 pipeline; returns at once so the REPL stays free."""
    global sampler
    if hasattr(micropython, "alloc_emergency_exception_buf"):
        micropython.alloc_emergency_exception_buf(128)
    current = settings.Settings()
    current.load()
    link = packets.Link(hw.gateway(), cfg.NODE_ID, cfg.RESEND_BYTES)
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
    print("faultline: tier2=%s settings=%s" % ("none" if running.model is None else ("model" if cfg.MODEL_DECIDES else "advisory"), settings.SOURCES[current.source]))
    if current.problem:
        print("faultline: " + current.problem[:68])
    return running


def service():
    """Let the pipeline catch up (the unix port's sampler needs calling; a board's runs by itself)."""
    return sampler is not None and sampler.service()
