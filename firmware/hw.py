# The hardware layer: one interface (gateway, command_port, safety_output, watchdog, sampler) with two
# sides, chosen by sys.platform: a board (hw_board) or the MicroPython unix port (hw_unix).
import sys

if sys.platform == "linux":
    from hw_unix import command_port, gateway, safety_output, sampler, watchdog  # noqa: F401
else:
    from hw_board import command_port, gateway, safety_output, sampler, watchdog  # noqa: F401
