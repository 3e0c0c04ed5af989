"""``manage.py`` on a pseudo-terminal, and the screen a person would see.

:class:`Terminal` starts a command with its stdin, stdout and stderr on a pty (so it sees a
terminal: progress bars, prompts), lets a test wait for text and type answers, and
:func:`screen` replays what it wrote (carriage returns, cursor moves, line erases) onto a
grid of lines, as a terminal draws it.
"""
from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

from .waiting import PATIENCE

ROOT = Path(__file__).resolve().parent.parent
_CSI = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])")


class Terminal:
    """``python manage.py *args`` on a pty of ``columns`` x ``rows``."""

    def __init__(self, *args: str, env: dict[str, str], columns: int = 200,
                 rows: int = 50) -> None:
        self.columns = columns
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.master = master
        self.output = b""
        self.process = subprocess.Popen([sys.executable, "manage.py", *args], cwd=ROOT,
                                        env=dict(env, TERM="xterm", COLUMNS=str(columns)),
                                        stdin=slave, stdout=slave, stderr=slave,
                                        start_new_session=True)
        os.close(slave)

    def _read(self, timeout: float) -> bool:
        """Read what is there within ``timeout`` s; false once the pty is closed."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: every process holding the terminal has ended
            return False
        self.output += chunk
        return bool(chunk)

    @property
    def text(self) -> str:
        return self.output.decode("utf-8", "replace")

    def expect(self, text: str, timeout: float = PATIENCE) -> None:
        """Wait until ``text`` was written (raise ``TimeoutError`` after ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        open_ = True
        while text not in self.text:
            if not open_ or time.monotonic() >= deadline:
                raise TimeoutError(f"{text!r} not written; got {self.text[-2000:]!r}")
            open_ = self._read(0.1)

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def finish(self, timeout: float = PATIENCE) -> int:
        """Read everything until the process ends; return its exit status."""
        deadline = time.monotonic() + timeout
        while self._read(0.1):
            if time.monotonic() >= deadline:
                self.process.kill()
                raise TimeoutError(f"still running after {timeout:.0f} s: {self.text[-2000:]!r}")
        status = self.process.wait(timeout)
        os.close(self.master)
        return status

    def screen(self) -> list[str]:
        return screen(self.text, self.columns)


def screen(text: str, columns: int = 200) -> list[str]:
    """The lines a terminal of ``columns`` shows after drawing ``text`` (every line since
    the start: nothing scrolls away)."""
    lines: list[list[str]] = [[]]
    row = col = 0
    position = 0
    while position < len(text):
        match = _CSI.match(text, position)
        if match:
            count = int(match.group(1) or 1) if match.group(1).isdigit() else 1
            final = match.group(2)
            if final == "A":
                row = max(0, row - count)
            elif final == "B":
                row += count
            elif final == "C":
                col += count
            elif final == "D":
                col = max(0, col - count)
            elif final == "K" and row < len(lines):  # erase to the end of the line
                del lines[row][col:]
            position = match.end()
            continue
        char = text[position]
        position += 1
        if char == "\r":
            col = 0
        elif char == "\n":
            row += 1
        elif char == "\b":
            col = max(0, col - 1)
        elif char >= " ":
            if col >= columns:
                row, col = row + 1, 0
            while len(lines) <= row:
                lines.append([])
            line = lines[row]
            line.extend(" " * (col + 1 - len(line)))
            line[col] = char
            col += 1
        while len(lines) <= row:
            lines.append([])
    return ["".join(line).rstrip() for line in lines]
