# Runs on the MicroPython unix port (not CPython): the REPL of a virtual board, speaking the
# MicroPython REPL protocol on stdin/stdout (the vboard relay joins them to a pty).
#   micropython mpy_vboard_repl.py BOARD friendly|raw cold|soft
# Friendly REPL, raw REPL and raw-paste as pyexec does them. Ctrl-D on an empty line is a
# soft reset: this process exits with SOFT_RESET (friendly) or SOFT_RESET_RAW and the relay
# starts a fresh VM, as a board restarts its VM. While idle it lets the firmware run.
import os
import select
import sys

import micropython

SOFT_RESET = 80
SOFT_RESET_RAW = 81
PASTE_WINDOW = 128
board = sys.argv[1]
stdin = sys.stdin.buffer
stdout = sys.stdout.buffer
namespace = {"__name__": "__main__"}
poller = select.poll()
poller.register(sys.stdin, select.POLLIN)
micropython.kbd_intr(3)  # the relay turns Ctrl-C into SIGINT, which interrupts running code


class _BoardOs:
    """`os` as a board has it: ilistdir gives sizes too (the unix port's does not), and rename
    will not replace an existing file (a board's FAT volume refuses to)."""

    def __getattr__(self, name):
        return getattr(os, name)

    def rename(self, old, new):
        try:
            os.stat(new)
        except OSError:
            return os.rename(old, new)
        raise OSError(17)  # EEXIST

    def ilistdir(self, path="."):
        for entry in os.ilistdir(path):
            size = os.stat(path + "/" + entry[0])[6] if entry[1] == 0x8000 else 0
            yield entry[0], entry[1], entry[2], size


sys.modules["os"] = _BoardOs()


def write(data):
    stdout.write(data)


def idle():
    """Let the firmware's sampler catch up while nothing else runs."""
    firmware = sys.modules.get("faultline")
    if firmware is not None:
        firmware.service()


def read_byte():
    while True:
        try:
            if poller.poll(2):
                data = stdin.read(1)
                if not data:
                    sys.exit(0)  # the relay went away
                return data[0]
            idle()
        except KeyboardInterrupt:  # a Ctrl-C with nothing running: nothing to interrupt
            pass


def run(source, mode):
    """Run code in the REPL's namespace; returns the exception, if any."""
    try:
        exec(compile(source, "<stdin>", mode), namespace)  # "single" prints an expression's value
    except BaseException as error:  # the REPL reports everything, as a board's does
        if isinstance(error, SystemExit):
            raise
        return error
    return None


def run_file(name):
    try:
        os.stat(name)
    except OSError:
        return
    with open(name) as f:
        source = f.read()
    error = run(source, "exec")
    if error is not None:
        sys.print_exception(error)


def soft_reset(code):
    sys.stdout.flush()
    sys.exit(code)


def banner():
    write(b"MicroPython v%d.%d.%d on faultline virtual board %s (unix port)\r\n" % (
        sys.implementation.version[:3] + (board.encode(),)))
    write(b'Type "help()" for more information.\r\n')


def friendly():
    banner()
    line = bytearray()
    lines = []
    write(b">>> ")
    while True:
        c = read_byte()
        if c == 1:  # Ctrl-A: raw REPL
            write(b"\r\n")
            return raw
        if c == 2:  # Ctrl-B: banner again
            write(b"\r\n")
            banner()
            line, lines = bytearray(), []
            write(b">>> ")
        elif c == 3:  # Ctrl-C: drop the line
            line, lines = bytearray(), []
            write(b"\r\n>>> ")
        elif c == 4 and not line and not lines:  # Ctrl-D: soft reset
            write(b"\r\n")
            soft_reset(SOFT_RESET)
        elif c in (8, 127):
            if line:
                line.pop()
                write(b"\x08 \x08")
        elif c == 13:
            write(b"\r\n")
            text = line.decode()
            line = bytearray()
            if lines or text.rstrip().endswith(":"):
                lines.append(text)
                if text.strip():
                    write(b"... ")
                    continue
                source, lines = "\n".join(lines) + "\n", []
                error = run(source, "exec")
            elif text.strip():
                error = run(text, "single")
            else:
                error = None
            if error is not None:
                sys.print_exception(error)
            write(b">>> ")
        elif c >= 32 or c == 9:
            line.append(c)
            write(bytes((c,)))


def raw_paste():
    """Raw-paste: take the code in windows, acknowledging each, until Ctrl-D; None if a Ctrl-C abandons it
    (pyexec's stdin reader ends the paste on either, and raises KeyboardInterrupt on Ctrl-C)."""
    write(b"R\x01" + bytes((PASTE_WINDOW & 0xFF, PASTE_WINDOW >> 8)) + b"\x01")
    code = bytearray()
    taken = 0
    while True:
        c = read_byte()
        if c == 4 or c == 3:
            write(b"\x04")
            return bytes(code) if c == 4 else None
        code.append(c)
        taken += 1
        if taken == PASTE_WINDOW:
            taken = 0
            write(b"\x01")


def raw():
    write(b"raw REPL; CTRL-B to exit\r\n>")
    while True:
        code = bytearray()
        pasted = None
        interrupted = False
        while True:
            c = read_byte()
            if c == 1:  # Ctrl-A again: start the raw REPL over
                return raw
            if c == 2:  # Ctrl-B: friendly REPL
                write(b"\r\n")
                return friendly
            if c == 3:  # Ctrl-C: drop what was typed
                code = bytearray()
            elif c == 4:
                break
            elif c == 5 and not code:  # raw-paste request: Ctrl-E 'A' Ctrl-A
                if read_byte() == ord("A") and read_byte() == 1:
                    pasted = raw_paste()
                    interrupted = pasted is None
                    break
                write(b"R\x00")
            else:
                code.append(c)
        if pasted is None and not interrupted:
            if not code:
                write(b"OK\r\n")
                soft_reset(SOFT_RESET_RAW)
            write(b"OK")
        error = KeyboardInterrupt() if interrupted else run(pasted if pasted is not None else bytes(code), "exec")
        write(b"\x04")
        if error is not None:
            sys.print_exception(error)
        write(b"\x04>")


def main():
    mode = sys.argv[2]
    if sys.argv[3] == "soft":
        write(b"MPY: soft reboot\r\n")
    run_file("boot.py")
    if mode == "friendly":
        run_file("main.py")
    state = friendly if mode == "friendly" else raw
    while True:
        try:
            state = state()
        except KeyboardInterrupt:
            write(b"\r\nKeyboardInterrupt\r\n")


main()
