# Runs on the MicroPython unix port (not CPython): a generated model module over files, streamed
# through buffers allocated before the first inference so it fits the board's heap.
#   micropython engine_runner.py MODULE_DIR MODULE run IN.i8 OUT.i8 [sliced]
#   micropython engine_runner.py MODULE_DIR MODULE classify WINDOWS.i16 OUT
#   micropython engine_runner.py MODULE_DIR MODULE allocation N         -> bytes allocated over N inferences, invoke and sliced
#   micropython engine_runner.py MODULE_DIR MODULE bench N              -> ms per inference
#   micropython engine_runner.py MODULE_DIR MODULE bench-prepare N      -> ms per prepare() of a window (the input recipe)
#   micropython engine_runner.py MODULE_DIR MODULE heap                 -> heap bytes the imported module holds
import array
import gc
import sys
import time

sys.path.insert(0, sys.argv[1])
gc.collect()
heap_before_import = gc.mem_alloc()
model = __import__(sys.argv[2])
gc.collect()
heap_after_import = gc.mem_alloc()
mode = sys.argv[3]


def run_sliced():
    model.begin()
    while not model.step():
        pass


def run(in_path, out_path, sliced):
    with open(in_path, "rb") as source, open(out_path, "wb") as target:
        while source.readinto(model.INPUT) == len(model.INPUT):
            if sliced:
                run_sliced()
            else:
                model.invoke()
            target.write(model.OUTPUT)


def classify(in_path, out_path):
    window = array.array("h", bytes(2 * model.WINDOW * model.CHANNELS))
    scores = array.array("i", bytes(4 * len(model.OUTPUT)))
    best = array.array("i", [0])
    with open(in_path, "rb") as source, open(out_path, "wb") as target:
        while source.readinto(window) == 2 * len(window):
            best[0] = model.classify(window, scores)
            target.write(model.INPUT)
            target.write(scores)
            target.write(best)


def allocation(count):
    scores = array.array("i", bytes(4 * len(model.OUTPUT)))
    window = array.array("h", bytes(2 * model.WINDOW * model.CHANNELS))
    for i in range(len(window)):
        window[i] = (i * 977) % 20000 - 10000
    model.classify(window, scores)
    run_sliced()
    gc.collect()
    before = gc.mem_alloc()
    for _ in range(count):
        model.INPUT[i % len(model.INPUT)] = i & 0xFF
        model.invoke()
    after_invoke = gc.mem_alloc()
    for _ in range(count):
        run_sliced()
    after_sliced = gc.mem_alloc()
    for _ in range(count):
        model.classify(window, scores)
    after_classify = gc.mem_alloc()
    print(after_invoke - before, after_sliced - after_invoke, after_classify - after_sliced)


def bench(count):
    started = time.ticks_us()
    for _ in range(count):
        model.invoke()
    print(time.ticks_diff(time.ticks_us(), started) / 1000 / count)


def bench_prepare(count):
    window = array.array("h", bytes(2 * model.WINDOW * model.CHANNELS))
    for i in range(len(window)):
        window[i] = (i * 977) % 20000 - 10000
    started = time.ticks_us()
    for _ in range(count):
        model.prepare(window, model.CHANNELS)
    print(time.ticks_diff(time.ticks_us(), started) / 1000 / count)


if mode == "run":
    run(sys.argv[4], sys.argv[5], len(sys.argv) > 6)
elif mode == "classify":
    classify(sys.argv[4], sys.argv[5])
elif mode == "allocation":
    allocation(int(sys.argv[4]))
elif mode == "bench":
    bench(int(sys.argv[4]))
elif mode == "bench-prepare":
    bench_prepare(int(sys.argv[4]))
elif mode == "heap":
    print(heap_after_import - heap_before_import)
