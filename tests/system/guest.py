"""turnchat inside the booted container: its config, its units, its journal."""

import json

from turnchat_helpers import wait_for

CONF = "/etc/turnchat.conf"
PORT = 52928
TLS_PORT = 52929
# The TLS pair the installed config names.
CRT, KEY = "/etc/turnchat/tls.crt", "/etc/turnchat/tls.key"
UNITS = ("turnchat.service", "turnchat.socket")
DROPIN_DIRS = tuple(f"/etc/systemd/system/{u}.d" for u in UNITS)


def configure(box, port=PORT, host="localhost", **server):
    """Replaces /etc/turnchat.conf with a short one; unset keys keep their
    defaults."""
    settings = "".join(f"  {k} = {json.dumps(v)};\n" for k, v in server.items())
    box.write(CONF, f'host = "{host}";\nport = {port};\nserver = {{\n{settings}}};\n')


def reset(box, config):
    """Both units stopped and their failures forgotten (which also resets the
    start rate limit), the installed config and no drop-ins of ours."""
    box.systemctl("stop", *UNITS, check=False)
    box.systemctl("reset-failed", *UNITS, check=False)
    box.run(["rm", "-rf", *DROPIN_DIRS])
    box.write(CONF, config)
    box.systemctl("daemon-reload")


def dropin(box, unit, name, text):
    box.run(["mkdir", "-p", f"/etc/systemd/system/{unit}.d"])
    box.write(f"/etc/systemd/system/{unit}.d/{name}.conf", text)
    box.systemctl("daemon-reload")


def show(box, unit, prop):
    return box.systemctl("show", "-p", prop, "--value", unit).stdout.strip()


def state(box, unit="turnchat.service"):
    return box.systemctl("is-active", unit, check=False).stdout.strip()


def wait_state(box, wanted, unit="turnchat.service", timeout=15):
    wait_for(lambda: state(box, unit) == wanted,
             f"{unit} {wanted} (it is {state(box, unit)})\n{status(box, unit)}", timeout)


def status(box, unit="turnchat.service"):
    return box.systemctl("status", "--lines=30", unit, check=False).stdout


# The processes named $1 (their comm) as "PID EUID" lines, from /proc: the
# container is as minimal as a debootstrap minbase system, without ps or
# pgrep (procps).
_PROCESSES = r"""
for d in /proc/[0-9]*; do
  read -r comm 2>/dev/null < "$d/comm" || continue
  [ "$comm" = "$1" ] || continue
  while read -r key real effective rest; do
    [ "$key" = Uid: ] && echo "${d#/proc/} $effective"
  done 2>/dev/null < "$d/status"
done
true
"""


def processes(box, name):
    """{pid: effective uid} of the processes inside named name, as pgrep -x
    and ps -o uid= would tell."""
    out = box.run(["sh", "-c", _PROCESSES, "-", name]).stdout
    return {int(pid): int(uid) for pid, uid in (line.split() for line in out.splitlines())}


def uid_of(box, pid):
    """The effective uid of a process inside, from /proc/PID/status."""
    for line in box.read(f"/proc/{pid}/status").splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[2])
    raise AssertionError(f"no Uid: line in /proc/{pid}/status")


def cursor(box):
    """The journal's current end, to read only what comes after it."""
    out = box.run(["journalctl", "--show-cursor", "-n", "0", "-q"], check=False).stdout
    for line in out.splitlines():
        if line.startswith("-- cursor: "):
            return line[len("-- cursor: "):]
    return None


def journal(box, after, unit="turnchat.service"):
    """The unit's journal entries after the cursor, as dicts."""
    argv = ["journalctl", "-u", unit, "-o", "json", "--no-pager"]
    if after:
        argv.append("--after-cursor=" + after)
    out = box.run(argv, check=False).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def wait_journal(box, after, text, timeout=10, unit="turnchat.service"):
    """The first entry whose MESSAGE contains text (a string or a compiled
    pattern); journald gets syslog lines asynchronously, so this waits."""
    found = []
    matches = text.search if hasattr(text, "search") else (lambda m: text in m)

    def look():
        found[:] = [e for e in journal(box, after, unit) if matches(str(e.get("MESSAGE")))]
        return found

    try:
        wait_for(look, f"journal line with {text!r}", timeout, interval=0.2)
    except AssertionError:
        messages = [e.get("MESSAGE") for e in journal(box, after, unit)]
        raise AssertionError(f"no journal line of {unit} contains {text!r}; it has:\n"
                             + "\n".join(map(str, messages))) from None
    return found[0]
