# Runs on the MicroPython unix port (not CPython): the firmware on a replayed recording.
#   FAULTLINE_SCENARIO=rec.i16 FAULTLINE_LINK=packets.bin micropython mpy_replay.py FIRMWARE_DIR
# At the end of the recording (the sampler flushes what the pipeline holds) it sends a last heartbeat and prints
# one line of figures: blocks, loop p50/p99/max (us), peak heap use (bytes).
import gc
import sys

sys.path.insert(0, sys.argv[1])
import faultline  # noqa: E402

running = faultline.start()
gc.collect()
baseline = gc.mem_alloc()
peak = baseline
while faultline.service():
    used = gc.mem_alloc()
    if used > peak:
        peak = used
running.heartbeat()
import faultline_config  # noqa: E402

print("figures", running.read // faultline_config.BLOCK, running.percentile_us(50), running.percentile_us(99), running.worst_us, peak, baseline)
