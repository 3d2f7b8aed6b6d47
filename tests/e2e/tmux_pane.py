"""A program on a real terminal, as a person sees it: tmux runs it in a
pane of a private tmux server (its own socket, so the tests never touch
anyone else's sessions), and the tests type into it (send-keys -l), paste
(set-buffer and paste-buffer), resize it (resize-window) and read the
screen (capture-pane). Used by test_screen.py and test_presence.py."""

import itertools
import os
import shlex
import subprocess
import time

from turnchat_helpers import TIMEOUT

_count = itertools.count()


class Pane:
    """One tmux session running command (a list) in cwd, width x height,
    in a UTF-8 locale. The shell line after the command prints EXIT=status
    and keeps the pane open, so the last screen and the status can be read."""

    def __init__(self, command, env, cwd=None, width=80, height=24):
        self.socket = f"turnchat-test-{os.getpid()}-{next(_count)}"
        self.target = "t"
        env = dict(env)
        env["LANG"] = "C.UTF-8"
        env.pop("TMUX", None)
        shell = f"{shlex.join(command)}; echo EXIT=$?; sleep {10 * TIMEOUT}"
        self.tmux("-f", "/dev/null", "new-session", "-d", "-s", self.target,
                  "-x", str(width), "-y", str(height), *(["-c", str(cwd)] if cwd else []),
                  shell, env=env)

    def tmux(self, *args, env=None):
        return subprocess.run(["tmux", "-u", "-L", self.socket, *args], env=env, check=True,
                              capture_output=True, text=True, timeout=TIMEOUT).stdout

    def close(self):
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True,
                       timeout=TIMEOUT)

    def type(self, text):
        """Types text as keys, literally."""
        self.tmux("send-keys", "-t", self.target, "-l", text)

    def key(self, *keys):
        """Presses keys by tmux name: Enter, Tab, Left, C-c, C-d."""
        self.tmux("send-keys", "-t", self.target, *keys)

    def line(self, text):
        """Types text and presses Enter."""
        self.type(text)
        self.key("Enter")

    def paste(self, text, bracketed=False):
        """Pastes text as a terminal would: bracketed (-p) when asked,
        else raw, each LF arriving as CR, as if typed with Enter."""
        self.tmux("set-buffer", "-b", "paste", text)
        self.tmux("paste-buffer", "-d", "-b", "paste", "-t", self.target,
                  *(["-p"] if bracketed else []))

    def resize(self, width, height=None):
        self.tmux("resize-window", "-t", self.target, "-x", str(width),
                  *(["-y", str(height)] if height else []))

    def screen(self, history=False, joined=False):
        """The rows on the screen (and above it, in the scrollback, when
        history), right-trimmed; joined: rows the terminal wrapped are one."""
        args = ["capture-pane", "-p", "-t", self.target]
        if history:
            args += ["-S", "-"]
        if joined:
            args.append("-J")
        return [row.rstrip() for row in self.tmux(*args).split("\n")]

    def rows(self, **kw):
        """The screen's rows without the empty ones."""
        return [row for row in self.screen(**kw) if row]

    def cursor(self):
        x, y = self.tmux("display", "-p", "-t", self.target, "#{cursor_x} #{cursor_y}").split()
        return int(x), int(y)

    def wait(self, predicate, what, timeout=TIMEOUT):
        """Reads the screen until predicate(rows) is true (rows: those not
        empty, the scrollback's too; never asked of an empty screen); an
        AssertionError with the screen if it is not within timeout seconds."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.rows(history=True)
            if rows and predicate(rows):
                return rows
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {timeout} s; the screen:\n"
                                     + "\n".join(rows))
            time.sleep(0.03)

    def wait_for(self, text, timeout=TIMEOUT):
        """Waits until some row contains text."""
        return self.wait(lambda rows: any(text in row for row in rows), repr(text), timeout)

    def last_row(self):
        rows = self.rows()
        return rows[-1] if rows else ""

    def wait_prompt(self, prompt, timeout=TIMEOUT):
        """Waits until the last row is exactly prompt (an empty input line);
        returns the rows that showed it."""
        return self.wait(lambda rows: rows[-1] == prompt.rstrip(),
                         f"prompt {prompt!r}", timeout)

    def exit_status(self, timeout=TIMEOUT):
        """The program's exit status, once it has exited."""
        rows = self.wait(lambda rows: any(row.startswith("EXIT=") for row in rows),
                         "the program exiting", timeout)
        return int(next(row for row in rows if row.startswith("EXIT="))[5:])
