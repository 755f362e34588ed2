"""Reading users' data: int16 recordings of a machine, and float representative windows for int8 conversion."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hostgen.errors import HostgenError


def load_array(path: Path):
    """np.load without pickles; a file that is not NumPy's says so (numpy would advise loading it unsafely)."""
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc):
            raise ValueError("not a NumPy .npy or .npz file") from None
        raise


def load_recording(path: Path, channels: int | None = None) -> np.ndarray:
    """An int16 recording of shape (samples,) or (samples, channels), as (samples, channels)."""
    try:
        data = load_array(path)
    except (OSError, ValueError) as exc:
        raise HostgenError(f"cannot read recording {path} ({exc}); give an int16 .npy file") from None
    if not isinstance(data, np.ndarray):
        raise HostgenError(f"recording {path} is an .npz archive; give one int16 .npy array")
    if data.dtype != np.int16:
        raise HostgenError(f"recording {path} has dtype {data.dtype}; give int16 ADC counts (e.g. np.int16(np.round(x)))")
    if data.ndim not in (1, 2) or data.size == 0:
        raise HostgenError(f"recording {path} has shape {data.shape}; give (samples,) or (samples, channels)")
    data = data.reshape(len(data), -1)
    if channels is not None and data.shape[1] != channels:
        raise HostgenError(
            f"recording {path} has {data.shape[1]} channel(s) but the app samples {channels}; "
            "record the same channels or set sampling.channels"
        )
    return data


def normal_recordings(paths: list[Path]) -> list[Path]:
    """The .npy files named, a directory standing for the .npy files in it (sorted)."""
    found = []
    for path in paths:
        if path.is_dir():
            inside = sorted(path.glob("*.npy"))
            if not inside:
                raise HostgenError(f"--normal {path} is a directory with no .npy recordings in it; give .npy files or such a directory")
            found += inside
        else:
            found.append(path)
    return found


DEAD_SENSOR_SHARE = 0.05  # of a normal recording: more than this stuck or at the rails is a sensor fault


def refuse_dead_sensor(path: Path, recording: np.ndarray, full_scale: int, stuck_samples: int) -> None:
    """A "normal" recording from a dead, stuck or saturating sensor would set thresholds that alarm
    all the time: refuse it, naming what the sensor did."""
    for channel in range(recording.shape[1]):
        x = recording[:, channel].astype(np.int32)
        at_rails = float(np.mean((x >= full_scale) | (x <= -full_scale - 1)))
        changes = np.flatnonzero(np.diff(x)) + 1
        runs = np.diff(np.concatenate([[0], changes, [len(x)]]))
        stuck = float(runs[runs >= stuck_samples].sum() / len(x))
        where = f"normal recording {path} ch{channel}"
        if np.ptp(x) == 0:
            raise HostgenError(f"{where} is flat at {x[0]} (a dead or disconnected sensor); record the machine running")
        if at_rails > DEAD_SENSOR_SHARE:
            raise HostgenError(f"{where} is at full scale in {at_rails:.0%} of samples (a saturated sensor or a wrong gain); "
                               "fix the sensor or its gain, then record again")
        if stuck > DEAD_SENSOR_SHARE:
            raise HostgenError(f"{where} is stuck (runs of {stuck_samples}+ equal samples) in {stuck:.0%} of it (a sensor "
                               "fault); fix the sensor, then record again")


def load_representative(path: Path) -> np.ndarray:
    """Float32 windows from .npy, or the `x` array of an .npz."""
    try:
        loaded = load_array(path)
        data = loaded["x"] if isinstance(loaded, np.lib.npyio.NpzFile) else loaded
    except (OSError, ValueError, KeyError) as exc:
        raise HostgenError(f"cannot read representative data {path} ({exc}); give a .npy or an .npz with 'x'") from None
    return np.asarray(data, dtype=np.float32)
