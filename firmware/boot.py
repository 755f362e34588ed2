# Boot: run the firmware the pointer names. `hostgen flash` writes a whole firmware into
# fw-<digest>/ (8 hex digits), then replaces the pointer firmware.txt with firmware.tmp (FAT cannot rename
# over a file: it removes firmware.txt first, so firmware.tmp counts only while
# firmware.txt is missing). No valid pointer: the modules beside this file.
import os
import sys

POINTERS = ("firmware.txt", "firmware.tmp")
NAME_LENGTH = 11  # "fw-" and 8 hex digits: a pointer cut short names no directory


def firmware_dir():
    for pointer in POINTERS:
        try:
            with open(pointer) as f:
                name = f.read(NAME_LENGTH + 1)
            if len(name) == NAME_LENGTH and name.startswith("fw-") and os.stat(name)[0] & 0x4000:
                return name
        except OSError:
            pass
    return None


chosen = firmware_dir()
if chosen is not None:
    sys.path.insert(0, chosen)
