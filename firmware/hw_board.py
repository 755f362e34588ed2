# The board side of the hardware layer: a hardware timer paces ADC reads into the
# pipeline's rings (an IRQ: allocates nothing), a UART carries packets to the gateway.
import faultline_config as cfg
import micropython
from machine import ADC, UART, WDT, Pin


def _pin(name):
    return int(name) if name.isdigit() else name


class BoardSampler:
    """Timer-paced ADC reads (an IRQ: allocates nothing); blocks are processed through micropython.schedule."""

    def __init__(self, pipeline):
        self.pipeline = pipeline
        self.adcs = [ADC(Pin(_pin(name))) for name in cfg.ADC_PINS]
        if cfg.TIMER_API == "pyb":
            import pyb

            self.timer = pyb.Timer(cfg.TIMER_ID, freq=cfg.RATE_HZ, callback=self._tick)
        else:
            from machine import Timer

            self.timer = Timer(cfg.TIMER_ID)
            self.timer.init(mode=Timer.PERIODIC, freq=cfg.RATE_HZ, callback=self._tick)

    def _tick(self, _timer):
        pipeline = self.pipeline
        for channel in range(cfg.CHANNELS):
            pipeline.write_sample(channel, self.adcs[channel].read_u16() - 32768)
        if pipeline.commit_sample() and not pipeline.pending:
            pipeline.pending = True
            micropython.schedule(pipeline.process_now, 0)

    def service(self):
        return True  # the timer and the scheduler keep the pipeline going



_uart = None


def gateway():
    global _uart
    if _uart is None:
        if cfg.UART_TX is None:
            _uart = UART(cfg.UART_ID, cfg.UART_BAUD, timeout=0)
        else:
            _uart = UART(cfg.UART_ID, cfg.UART_BAUD, tx=Pin(_pin(cfg.UART_TX)), rx=Pin(_pin(cfg.UART_RX)), timeout=0)
    return _uart


def command_port():
    """The gateway UART's receive side: readinto returns None at once when nothing came."""
    return gateway()


def safety_output():
    return None if cfg.SAFETY_PIN is None else Pin(_pin(cfg.SAFETY_PIN), Pin.OUT, value=0)


def watchdog():
    return WDT(timeout=4000)


def sampler(pipeline):
    return BoardSampler(pipeline)
