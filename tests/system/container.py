"""A booted Debian 12 container with a real systemd, for the system tests.

The root file system is made once with debootstrap and cached outside the
repository; every test session boots a fresh copy of it, with the build
installed into it by `meson install`, under

    systemd-nspawn -D ROOT --boot --register=no --keep-unit --private-network

(the only form that works on the machines this runs on: machinectl and
`systemd-run -M` do not).  Commands reach inside with `nsenter -t PID -a`,
PID being the container's init as the host sees it.  The container has its
own network namespace, so its loopback is private; clients connect from
inside it (connect() below opens a socket in that namespace and hands it
back to the test process, so tests use ordinary sockets)."""

import fcntl
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SUITE = "bookworm"
# What the tests use inside: systemd as init and its tools, the libraries
# turnchatd and turnchat link, man for `systemd-analyze verify` to check the
# units' Documentation=, ip, ss, nc and python3 to look around by hand, and
# xinetd for the xinetd test (it conflicts with openbsd-inetd, which the
# host runs for the inetd test, so the two cannot share a system), and
# openssl for `openssl s_client`, a TLS client nobody here wrote.
# Deliberately not procps: a minbase system has no kill, ps or pgrep, and
# neither may the units or the tests need them (the tests read /proc).
PACKAGES = ["systemd", "systemd-sysv", "dbus", "libconfig9", "libsystemd0",
            "man-db", "iproute2", "netcat-openbsd", "python3", "xinetd", "openssl"]
# Bump when the recipe below changes, so a cached root made by an older
# recipe is rebuilt instead of reused.
RECIPE = 5

CACHE = os.environ.get("TURNCHAT_ROOTFS_CACHE", "/var/cache/turnchat-tests")
ROOTFS = os.path.join(CACHE, SUITE)
MARKER = ".turnchat-rootfs-complete"
RUNS = os.path.join(CACHE, "runs")

DEBOOTSTRAP_TIMEOUT = 1500
BOOT_TIMEOUT = 120
STOP_TIMEOUT = 60
COMMAND_TIMEOUT = 60
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

REQUIRED_COMMANDS = ("debootstrap", "systemd-nspawn", "nsenter", "meson")
APT_PACKAGES = "debootstrap systemd-container openbsd-inetd meson"

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BUILD = os.path.abspath(os.environ.get("TURNCHAT_BUILD", os.path.join(REPO, "build")))


class SetupError(Exception):
    """The harness could not make or boot the container."""


def missing_commands(commands=REQUIRED_COMMANDS):
    return [c for c in commands if shutil.which(c, path=PATH) is None]


def require(*commands):
    """Skips the calling test when a command it needs is not installed, and
    only then: every other problem is a failure."""
    missing = missing_commands(commands)
    if missing:
        import pytest
        pytest.skip(f"not installed: {', '.join(missing)} (apt-get install {APT_PACKAGES})")


# ---------------------------------------------------------------- the mirror

def _apt_sources():
    """(uri, suites, components) of every enabled 'deb' source of this host."""
    entries = []
    one_line = ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list"))
    for path in one_line:
        try:
            lines = open(path).read().splitlines()
        except OSError:
            continue
        for line in lines:
            words = line.split("#", 1)[0].split()
            if not words or words[0] != "deb":
                continue
            words = words[1:]
            if words and words[0].startswith("["):
                while words and not words[0].endswith("]"):
                    words.pop(0)
                words = words[1:]
            if len(words) >= 2:
                entries.append((words[0], [words[1]], words[2:]))
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        try:
            text = open(path).read()
        except OSError:
            continue
        for stanza in text.split("\n\n"):
            fields, key = {}, None
            for line in stanza.splitlines():
                if line.startswith("#") or not line.strip():
                    continue
                if line[0] in " \t" and key:
                    fields[key] += " " + line.strip()
                elif ":" in line:
                    key, value = line.split(":", 1)
                    key = key.strip().lower()
                    fields[key] = value.strip()
            if "deb" not in fields.get("types", "").split():
                continue
            if fields.get("enabled", "yes").lower() == "no":
                continue
            for uri in fields.get("uris", "").split():
                entries.append((uri, fields.get("suites", "").split(),
                                fields.get("components", "").split()))
    return entries


def debian_mirror():
    """The Debian mirror this host's apt uses for the suite's main component."""
    if os.environ.get("TURNCHAT_DEBIAN_MIRROR"):
        return os.environ["TURNCHAT_DEBIAN_MIRROR"]
    for uri, suites, components in _apt_sources():
        if SUITE in suites and "main" in components:
            return uri
    raise SetupError(f"no apt source of this host serves '{SUITE} main' "
                     "(set TURNCHAT_DEBIAN_MIRROR to a Debian mirror)")


# ------------------------------------------------------------ the cached root

def _recipe():
    return {"recipe": RECIPE, "suite": SUITE, "packages": PACKAGES}


def _complete(root):
    try:
        with open(os.path.join(root, MARKER)) as f:
            return json.load(f) == _recipe()
    except (OSError, ValueError):
        return False


def _configure_root(root):
    """Small fixes that make a debootstrapped tree a good container."""
    with open(os.path.join(root, "etc/hostname"), "w") as f:
        f.write("turnchat-test\n")
    with open(os.path.join(root, "etc/hosts"), "w") as f:
        f.write("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                "127.0.1.1\tturnchat-test\n")
    # Empty: systemd makes a new machine id at each boot, so every copy
    # has its own.
    with open(os.path.join(root, "etc/machine-id"), "w"):
        pass
    # The xinetd test runs its own xinetd with the turnchat entry; the
    # packaged one would only find every service disabled.
    os.makedirs(os.path.join(root, "etc/systemd/system"), exist_ok=True)
    mask = os.path.join(root, "etc/systemd/system/xinetd.service")
    if not os.path.lexists(mask):
        os.symlink("/dev/null", mask)
    # The packages' downloads and apt's lists only make each copy bigger.
    for pattern in ("var/cache/apt/archives/*.deb", "var/lib/apt/lists/*_Packages",
                    "var/cache/apt/*.bin"):
        for path in glob.glob(os.path.join(root, pattern)):
            os.unlink(path)


def ensure_rootfs(log=sys.stderr):
    """The path of a complete cached root, made with debootstrap if needed."""
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _complete(ROOTFS):
            return ROOTFS
        mirror = debian_mirror()
        building = ROOTFS + ".building"
        for stale in (building, ROOTFS):
            if os.path.lexists(stale):
                shutil.rmtree(stale)
        debootstrap_log = os.path.join(CACHE, "debootstrap.log")
        command = ["debootstrap", "--variant=minbase", "--components=main",
                   "--include=" + ",".join(PACKAGES), SUITE, building, mirror]
        print(f"building the container root (once): {' '.join(command)}", file=log)
        with open(debootstrap_log, "w") as out:
            try:
                result = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=subprocess.STDOUT, timeout=DEBOOTSTRAP_TIMEOUT,
                                        env=_host_env())
            except subprocess.TimeoutExpired:
                raise SetupError(f"debootstrap took over {DEBOOTSTRAP_TIMEOUT} s; "
                                 f"see {debootstrap_log}") from None
        if result.returncode != 0:
            raise SetupError(f"debootstrap failed ({result.returncode}):\n"
                             + _tail(debootstrap_log))
        _configure_root(building)
        with open(os.path.join(building, MARKER), "w") as f:
            json.dump(_recipe(), f)
        os.rename(building, ROOTFS)
        return ROOTFS


# --------------------------------------------------------- installing a build

def build_prefix(build):
    """The prefix a meson build directory was set up with."""
    try:
        with open(os.path.join(build, "meson-info", "intro-buildoptions.json")) as f:
            options = json.load(f)
    except (OSError, ValueError) as e:
        raise SetupError(f"{build} is not a meson build directory: {e}") from None
    return next((o["value"] for o in options if o["name"] == "prefix"), None)


def install_build(build, root):
    """meson install into the container root, as a package would install."""
    prefix = build_prefix(build)
    if prefix != "/usr":
        raise SetupError(f"{build} was set up with --prefix={prefix}; the units and the "
                         "tests expect /usr (meson setup BUILD --prefix=/usr)")
    env = _host_env()
    env["DESTDIR"] = root
    result = subprocess.run(["meson", "install", "-C", build, "--no-rebuild", "--quiet"],
                            stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=COMMAND_TIMEOUT, env=env)
    if result.returncode != 0:
        raise SetupError(f"meson install failed ({result.returncode}):\n"
                         + result.stdout + result.stderr)
    return result.stdout


# --------------------------------------------------------------- the machine

class Container:
    """One booted copy of the cached root; start() boots it, stop() powers it
    off and removes the copy."""

    def __init__(self, base, build=None, repo_units=None, keep=False):
        self.base = base
        self.build = build
        self.repo_units = repo_units
        self.keep = keep
        self.root = None
        self.nspawn = None
        self.pid = None
        self.console_path = None
        self.units_from_repo = []  # units meson did not install, copied from systemd/

    # -- start and stop

    def start(self):
        os.makedirs(RUNS, exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix="run-", dir=RUNS)
        self.root = os.path.join(self.dir, "root")
        # cp -a keeps owners, modes, links and special files; on a file
        # system with reflinks the copy shares blocks with the cache.
        result = subprocess.run(["cp", "-a", "--reflink=auto", self.base, self.root],
                                capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            raise SetupError(f"cannot copy the container root: {result.stderr}")
        if self.build:
            install_build(self.build, self.root)
            self._complete_units()
        self._boot()

    def _complete_units(self):
        """Until meson installs the units, boot with the repository's copies so
        the harness and the units can be tested; test_install_layout fails
        meanwhile, naming what is missing."""
        unitdir = os.path.join(self.root, "usr/lib/systemd/system")
        for name in ("turnchat.socket", "turnchat.service"):
            if self.repo_units and not os.path.exists(os.path.join(unitdir, name)):
                shutil.copy(os.path.join(self.repo_units, name), os.path.join(unitdir, name))
                self.units_from_repo.append(name)

    def _boot(self):
        self.console_path = os.path.join(self.dir, "console.log")
        console = open(self.console_path, "w")
        self.nspawn = subprocess.Popen(
            ["systemd-nspawn", "-D", self.root, "--boot", "--register=no",
             "--keep-unit", "--private-network"],
            stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
            env=_host_env(), start_new_session=True)
        console.close()
        deadline = time.monotonic() + BOOT_TIMEOUT
        while self.pid is None:
            self._check_alive()
            self.pid = _container_init(self.nspawn.pid)
            if time.monotonic() > deadline:
                raise SetupError(f"no container init under nspawn after {BOOT_TIMEOUT} s\n"
                                 + self.console())
            time.sleep(0.1)
        state = ""
        while time.monotonic() < deadline:
            self._check_alive()
            result = self.run(["systemctl", "is-system-running"], check=False, timeout=10)
            state = result.stdout.strip()
            if state in ("running", "degraded"):
                return
            time.sleep(0.2)
        raise SetupError(f"the container did not finish booting in {BOOT_TIMEOUT} s "
                         f"(state {state!r})\n" + self.console())

    def _check_alive(self):
        if self.nspawn.poll() is not None:
            raise SetupError(f"systemd-nspawn exited {self.nspawn.returncode}\n" + self.console())

    def console(self):
        try:
            return "--- container console ---\n" + _tail(self.console_path, 60)
        except OSError:
            return ""

    def stop(self):
        """Power off, wait for nspawn, remove the copy.  Bounded: if the
        container does not go down, the nspawn we started is killed."""
        if self.nspawn is not None and self.nspawn.poll() is None:
            if self.pid is not None:
                self.run(["systemctl", "poweroff", "--no-block"], check=False, timeout=10)
            try:
                self.nspawn.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                # nspawn turns SIGTERM into an orderly shutdown of the container.
                self.nspawn.send_signal(signal.SIGTERM)
                try:
                    self.nspawn.wait(15)
                except subprocess.TimeoutExpired:
                    self.nspawn.kill()
                    self.nspawn.wait(15)
        if self.root and not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- commands inside

    def command(self, argv):
        return ["nsenter", "-t", str(self.pid), "-a", "--"] + list(argv)

    def run(self, argv, input=None, check=True, timeout=COMMAND_TIMEOUT):
        """Runs argv inside the container; returns the CompletedProcess (text)."""
        result = subprocess.run(self.command(argv), input=input, capture_output=True,
                                text=True, timeout=timeout, env=_guest_env(),
                                stdin=None if input is not None else subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited {result.returncode} in the "
                                 f"container:\n{result.stdout}{result.stderr}")
        return result

    def popen(self, argv, **kw):
        return subprocess.Popen(self.command(argv), env=_guest_env(), **kw)

    def sh(self, script, **kw):
        return self.run(["sh", "-c", script], **kw)

    def write(self, path, text, mode="0644"):
        self.run(["sh", "-c", f'umask 022 && cat > "$1" && chmod {mode} "$1"', "-", path],
                 input=text)

    def read(self, path):
        return self.run(["cat", path]).stdout

    def systemctl(self, *args, check=True, timeout=COMMAND_TIMEOUT):
        return self.run(["systemctl", "--no-pager", *args], check=check, timeout=timeout)

    def listening(self, port):
        """True while something inside listens on TCP port (any address)."""
        return tcp_listening(port, self.pid)

    def connect(self, port, host="127.0.0.1", timeout=10):
        """A TCP socket connected from inside the container's network."""
        return netns_connect(self.pid, host, port, timeout)


# ---------------------------------------------------------------- helpers

def tcp_listening(port, pid="self"):
    """True while something in the network namespace of pid (by default
    this process's) listens on TCP port, on any address."""
    for name in ("tcp", "tcp6"):
        try:
            lines = open(f"/proc/{pid}/net/{name}").read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                return True
    return False


_CONNECT = r"""
import os, socket, sys
channel = socket.socket(fileno=int(sys.argv[1]))
try:
    s = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=float(sys.argv[4]))
    socket.send_fds(channel, [b"ok"], [s.fileno()])
except OSError as e:
    channel.sendall(("%d %s" % (e.errno or 0, e)).encode())
"""


def netns_connect(pid, host, port, timeout=10):
    """Connects from the network namespace of pid and returns the socket.
    A helper entering only that namespace makes the connection and passes
    the socket back over a Unix socket, so a refused connection raises
    ConnectionRefusedError here as it would locally."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with ours, theirs:
        helper = subprocess.Popen(
            ["nsenter", "-t", str(pid), "-n", "--", sys.executable, "-c", _CONNECT,
             str(theirs.fileno()), host, str(port), str(timeout)],
            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, env=_host_env())
        theirs.close()
        ours.settimeout(timeout + 10)
        try:
            message, fds, _, _ = socket.recv_fds(ours, 4096, 1)
        finally:
            try:
                helper.wait(timeout + 10)
            except subprocess.TimeoutExpired:
                helper.kill()
                helper.wait()
    if fds:
        return socket.socket(fileno=fds[0])
    text = message.decode(errors="replace")
    number, _, why = text.partition(" ")
    if not number.isdigit():
        raise OSError(f"connect helper failed: {text!r}")
    raise OSError(int(number), why)


def _container_init(nspawn_pid):
    """The host PID of the container's PID 1: the descendant of nspawn whose
    PID in its own namespace is 1."""
    todo = [nspawn_pid]
    while todo:
        pid = todo.pop()
        for task in glob.glob(f"/proc/{pid}/task/*/children"):
            try:
                todo += [int(c) for c in open(task).read().split()]
            except OSError:
                pass
        if pid == nspawn_pid:
            continue
        try:
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("NSpid:"):
                    ids = line.split()[1:]
                    if len(ids) > 1 and ids[-1] == "1":
                        return pid
        except OSError:
            pass
    return None


def _host_env():
    env = {k: v for k, v in os.environ.items()
           if k not in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")}
    env["PATH"] = PATH + ":" + env.get("PATH", "")
    return env


def _guest_env():
    return {"PATH": PATH, "LANG": "C.UTF-8", "TERM": "dumb", "SYSTEMD_PAGER": "",
            "SYSTEMD_COLORS": "0", "HOME": "/root"}


def _tail(path, lines=40):
    with open(path, errors="replace") as f:
        return "".join(f.readlines()[-lines:])


if __name__ == "__main__":
    # python3 container.py: makes (or checks) the cached root and boots a copy.
    started = time.monotonic()
    base = ensure_rootfs()
    print(f"root ready in {time.monotonic() - started:.1f} s: {base}")
    box = Container(base, build=os.environ.get("TURNCHAT_BUILD"))
    try:
        box.start()
        print(f"booted in {time.monotonic() - started:.1f} s, init is PID {box.pid}")
        print(box.run(["systemctl", "is-system-running"], check=False).stdout.strip())
    finally:
        box.stop()
    print(f"done in {time.monotonic() - started:.1f} s")
