# Runs on the MicroPython unix port (not CPython): the generated DSP modules on files,
# streamed through preallocated buffers so it fits the board's heap.
#   micropython runner.py MODULE_DIR FIR_MODULE fir IN.i16 BLOCKS.u16 OUT.i16 [plain]
#   micropython runner.py MODULE_DIR FIR_MODULE fallback WINDOWS.i16 THRESHOLDS.i32 OUT.i32  (each window, then its raw samples)
#   micropython runner.py MODULE_DIR FIR_MODULE bench-fir SAMPLES [plain]
#   micropython runner.py MODULE_DIR FIR_MODULE bench-fallback WINDOWS
import array
import sys
import time

sys.path.insert(0, sys.argv[1])
fir = __import__(sys.argv[2])
mode = sys.argv[3]
CHUNK = 256
MAX_BLOCK = 1024  # samples per block at most (hostgen splits larger ones)


def stepper(stage, plain):
    if not plain:
        return stage.process
    module = __import__(sys.argv[2] + "_plain")
    return lambda source, target, n: module.process(stage, source, target, n)


def run_fir(in_path, blocks_path, out_path, plain):
    stage = fir.Filter()
    step = stepper(stage, plain)
    buffer = array.array("h", bytes(2 * MAX_BLOCK))
    view = memoryview(buffer)
    sizes = array.array("H", bytes(2 * CHUNK))
    with open(in_path, "rb") as source, open(blocks_path, "rb") as blocks, open(out_path, "wb") as target:
        while True:
            count = blocks.readinto(sizes) // 2
            if not count:
                break
            for i in range(count):
                got = source.readinto(view[: sizes[i]]) // 2
                step(buffer, buffer, got)
                target.write(view[:got])


def run_fallback(windows_path, thresholds_path, out_path):
    import fallback

    thresholds = array.array("i", bytes(4 * fallback.RULES))
    with open(thresholds_path, "rb") as limits:
        limits.readinto(thresholds)
    window = array.array("h", bytes(2 * fallback.WINDOW))
    raw = array.array("h", bytes(2 * fallback.WINDOW))
    result = fallback.new_result()
    history = fallback.new_period_history()  # the windows are one channel's, in order
    with open(windows_path, "rb") as windows, open(out_path, "wb") as target:
        while windows.readinto(window) == 2 * fallback.WINDOW and windows.readinto(raw) == 2 * fallback.WINDOW:
            fallback.evaluate(window, raw, thresholds, result, history)
            target.write(result)


def bench_fir(samples, plain):
    stage = fir.Filter()
    step = stepper(stage, plain)
    buffer = array.array("h", bytes(2 * CHUNK))
    seed = 1
    for i in range(CHUNK):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        buffer[i] = ((seed >> 8) & 0xFFFF) - 32768
    done = 0
    start = time.ticks_us()
    while done < samples:
        step(buffer, buffer, CHUNK)
        done += CHUNK
    print(1000 * time.ticks_diff(time.ticks_us(), start) / done)


def bench_fallback(windows):
    import fallback

    pair = array.array("h", bytes(4 * fallback.WINDOW))  # a window, then its raw samples
    seed = 1
    for i in range(2 * fallback.WINDOW):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        pair[i] = ((seed >> 8) & 0xFFFF) - 32768
    window = memoryview(pair)[: fallback.WINDOW]
    raw = memoryview(pair)[fallback.WINDOW :]
    thresholds = fallback.default_thresholds(0)
    result = fallback.new_result()
    history = fallback.new_period_history()
    start = time.ticks_us()
    for _ in range(windows):
        fallback.evaluate(window, raw, thresholds, result, history)
    print(1000 * time.ticks_diff(time.ticks_us(), start) / windows)


if mode == "fir":
    run_fir(sys.argv[4], sys.argv[5], sys.argv[6], len(sys.argv) > 7)
elif mode == "fallback":
    run_fallback(sys.argv[4], sys.argv[5], sys.argv[6])
elif mode == "bench-fir":
    bench_fir(int(sys.argv[4]), len(sys.argv) > 5)
elif mode == "bench-fallback":
    bench_fallback(int(sys.argv[4]))
