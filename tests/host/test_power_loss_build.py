"""Power loss on the host during the build swap: a child process swaps a build directory in
(hostgen.util.atomic.staged_directory, as `hostgen gen` does) and is SIGKILLed before and
after every filesystem step of the swap, and at random moments. The build directory must
always be whole (the old build or the new one), and the next run must leave nothing stale.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import REPO

FILES = 40
SWAP = """
import os, shutil, signal, sys
from pathlib import Path
from hostgen.util import atomic

out, tag, cut_at, exchange = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
steps = [0]


def cut(step):
    def run(*args, **kwargs):
        steps[0] += 1
        if steps[0] == cut_at:  # power lost just before this step
            os.kill(os.getpid(), signal.SIGKILL)
        result = step(*args, **kwargs)
        steps[0] += 1
        if steps[0] == cut_at:  # power lost just after it
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    return run


os.rename = cut(os.rename)
shutil.rmtree = cut(shutil.rmtree)
atomic._exchange = cut(atomic._exchange if exchange else lambda first, second: False)
with atomic.staged_directory(out) as staging:
    for i in range(%d):
        (staging / f"part{i:03d}.c").write_text(f"{tag} {i} " * 400)
print("steps", steps[0])
""" % FILES


def swap(out: Path, tag: str, cut_at: int = 0, exchange: bool = True, delay: float | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", SWAP, str(out), tag, str(cut_at), "1" if exchange else "0"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(REPO)})
    if delay is not None:
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
    out_, err = process.communicate(timeout=60)
    return subprocess.CompletedProcess(command, process.returncode, out_, err)


def build_tag(out: Path) -> str | None:
    """The tag of the whole build in `out`, or None if it is missing or mixed or partial."""
    if not out.is_dir():
        return None
    files = sorted(out.iterdir())
    tags = {path.read_text().split()[0] for path in files}
    return tags.pop() if len(files) == FILES and len(tags) == 1 else None


def leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name not in (out.name, f".{out.name}.lock"))


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2-exchange", "two-renames"])
def test_power_loss_at_every_step_and_random_moments_of_the_build_swap(tmp_path, exchange, runs):
    out = tmp_path / "build" / "stm32f4"
    assert swap(out, "first").returncode == 0
    started = time.monotonic()
    whole = swap(out, "old")
    duration = time.monotonic() - started
    steps = int(whole.stdout.split()[1])
    rng = random.Random(8)
    count = runs(steps + 10)
    lost, stale = [], []
    for run in range(count):
        assert swap(out, "old").returncode == 0
        if run < steps:
            cut = swap(out, "new", cut_at=run + 1, exchange=exchange)
        else:
            cut = swap(out, "new", exchange=exchange, delay=rng.uniform(0, duration * 1.2))
        if cut.returncode == 0 and run < steps:
            continue  # this step does not happen on this path
        after_cut = build_tag(out)
        nxt = swap(out, "next")  # the next run: it recovers and cleans up, then swaps its own build in
        if (exchange and after_cut not in ("old", "new")) or nxt.returncode != 0 or build_tag(out) != "next":
            lost.append((run, after_cut, nxt.stderr[-300:]))
        if leftovers(out):
            stale.append((run, leftovers(out)))
    print(f"build swap ({'exchange' if exchange else 'two renames'}): {count} power losses, {len(lost)} lost builds, "
          f"{len(stale)} runs leaving stale directories")
    assert not lost and not stale, (lost[:3], stale[:3])


def test_a_build_retired_by_a_cut_swap_is_put_back(tmp_path):
    """The two-rename path cut between its renames: `out` is missing until the next run puts the old build back."""
    out = tmp_path / "stm32f4"
    assert swap(out, "old").returncode == 0
    between = 4  # after the first rename: the old build retired, the new one not yet in place
    assert swap(out, "new", cut_at=between, exchange=False).returncode == -signal.SIGKILL
    assert not out.exists()
    from hostgen.util.atomic import staged_directory

    with pytest.raises(RuntimeError), staged_directory(out):
        assert build_tag(out) == "old", "recovered before the new run writes anything"
        raise RuntimeError("this run fails")
    assert build_tag(out) == "old" and not leftovers(out)
