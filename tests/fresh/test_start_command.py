"""The README's start command, as a newcomer runs it on a fresh machine.

The command is taken from README.md (the line after `<!-- start-command -->`)
and run as root, following the README's advice for root without sudo, in a
fresh minimal Debian 12: a copy of a `debootstrap --variant=minbase` tree,
under

    systemd-nspawn -D ROOT --register=no --keep-unit --as-pid2 BASH -c COMMAND

without --private-network, so the container shares the host's network: apt
inside reaches the host's Debian mirror, and the daemon the command starts
listens on the host's loopback, where this test talks to it.

The base tree is made once and cached in /var/cache/turnchat-tests (or
$TURNCHAT_ROOTFS_CACHE) as fresh-bookworm; it holds no build dependency, so
each run installs meson, gcc and the rest itself, as the command says, in its
own throwaway copy, which is deleted afterwards (the container's output of
the last run is kept beside the base, in fresh-last-output.log).

Skipped only when not root or when debootstrap or systemd-nspawn is missing;
any other problem is a failure, with the container's output."""

import contextlib
import fcntl
import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

from turnchat_helpers import Raw  # noqa: E402  (the line client of every suite)

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SUITE = "bookworm"
CACHE = os.environ.get("TURNCHAT_ROOTFS_CACHE", "/var/cache/turnchat-tests")
BASE = os.path.join(CACHE, "fresh-" + SUITE)
RUNS = os.path.join(CACHE, "fresh-runs")
LOCK = os.path.join(CACHE, ".fresh-lock")
LAST_OUTPUT = os.path.join(CACHE, "fresh-last-output.log")  # the last run's, kept
MARKER = ".turnchat-fresh-base-complete"
# Bump when the recipe of the base tree changes, so an older one is rebuilt.
RECIPE = 1

PORT = 52928  # the built-in default the start command's daemon listens on
SOURCE_IN_TREE = "root/turnchat"  # where the checkout goes, /root/turnchat inside
# What the start command itself must install: the pristine base must hold
# none of these, or the test would not show that the command installs them.
BUILD_DEPENDENCIES = ("usr/bin/meson", "usr/bin/ninja", "usr/bin/gcc", "usr/bin/cc",
                      "usr/bin/pkg-config", "usr/include/libconfig.h",
                      "usr/include/readline/readline.h", "usr/include/cmocka.h")

DEBOOTSTRAP_TIMEOUT = 1200  # the base tree, once
COPY_TIMEOUT = 300
COMMAND_TIMEOUT = 1200      # apt-get update and install, meson setup and compile, start
STOP_TIMEOUT = 30
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class Failed(Exception):
    pass


def run(argv, timeout, **kwargs):
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout, env=host_env(), **kwargs)


def host_env():
    env = {k: v for k, v in os.environ.items()
           if k not in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")}
    env["PATH"] = PATH + ":" + env.get("PATH", "")
    return env


def tail(path, lines=80):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError as e:
        return f"(cannot read {path}: {e})"


# ------------------------------------------------------------------ README

def start_command():
    """The start command exactly as README.md gives it, and as root without
    sudo runs it: the README says to drop the `sudo`s there."""
    with open(os.path.join(REPO, "README.md")) as f:
        text = f.read()
    after = text.split("<!-- start-command -->", 1)
    if len(after) != 2:
        raise Failed("README.md has no <!-- start-command --> marker")
    command = next((line for line in after[1].splitlines() if line.startswith("sudo ")), None)
    if command is None:
        raise Failed("README.md has no line starting with 'sudo ' after <!-- start-command -->")
    # The README's own instruction for root on a machine without sudo; if it
    # changes, so must this.
    instruction = "As root on a machine\nwithout sudo, run them without the `sudo`s."
    if instruction not in text:
        raise Failed("README.md no longer says how root runs its commands without sudo "
                     f"(this test applies {instruction!r})")
    return command, re.sub(r"\bsudo\s+", "", command)


# -------------------------------------------------------------- apt mirror

def apt_sources():
    """(file, uri, suites, components) of each enabled 'deb' source of this host."""
    entries = []
    for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
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
                entries.append((path, words[0], [words[1]], words[2:]))
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        try:
            text = open(path).read()
        except OSError:
            continue
        for stanza in re.split(r"\n\s*\n", text):
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
                entries.append((path, uri, fields.get("suites", "").split(),
                                fields.get("components", "").split()))
    return entries


def debian_mirror():
    if os.environ.get("TURNCHAT_DEBIAN_MIRROR"):
        return os.environ["TURNCHAT_DEBIAN_MIRROR"]
    for _, uri, suites, components in apt_sources():
        if SUITE in suites and "main" in components:
            return uri
    raise Failed(f"no apt source of this host serves '{SUITE} main' "
                 "(set TURNCHAT_DEBIAN_MIRROR to a Debian mirror)")


def copy_apt_config(root):
    """The host's apt sources replace debootstrap's, so that apt-get update
    inside sees the same mirror; with them go what says how to reach it (the
    Acquire:: settings: proxies, validity checks of a snapshot mirror,
    credentials) and the keyrings they name that the tree lacks. Nothing
    else of the host's apt setup (hooks, cache settings) is copied."""
    etc_apt = os.path.join(root, "etc/apt")
    for old in glob.glob(os.path.join(etc_apt, "sources.list")) + \
            glob.glob(os.path.join(etc_apt, "sources.list.d/*")):
        os.unlink(old)
    os.makedirs(os.path.join(etc_apt, "sources.list.d"), exist_ok=True)
    sources = sorted({path for path, *_ in apt_sources()})
    if not sources:
        raise Failed("this host has no enabled apt source to copy")
    copied = list(sources)
    for path in ["/etc/apt/apt.conf"] + sorted(glob.glob("/etc/apt/apt.conf.d/*")):
        try:
            if os.path.isfile(path) and "acquire" in open(path, errors="replace").read().lower():
                copied.append(path)
        except OSError:
            pass
    copied += [p for p in ["/etc/apt/auth.conf"] + sorted(glob.glob("/etc/apt/auth.conf.d/*"))
               + sorted(glob.glob("/etc/apt/keyrings/*")) if os.path.isfile(p)]
    for path in sources:
        for keyring in re.findall(r"signed-by\s*[:=]\s*(/[^\s\]]+)", open(path).read(), re.I):
            if os.path.isfile(keyring) and not os.path.exists(root + keyring):
                copied.append(keyring)
    for path in copied:
        target = root + path
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy(path, target)
    return copied


# ------------------------------------------------------------ the base tree

def recipe():
    return {"recipe": RECIPE, "suite": SUITE, "variant": "minbase"}


def complete(base):
    try:
        with open(os.path.join(base, MARKER)) as f:
            return json.load(f) == recipe()
    except (OSError, ValueError):
        return False


def ensure_base():
    """The cached pristine tree, made with debootstrap once (under a lock, so
    concurrent runs make it once); returns (path, seconds spent making it)."""
    os.makedirs(CACHE, exist_ok=True)
    started = time.monotonic()
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if complete(BASE):
            return BASE, 0.0
        mirror = debian_mirror()
        building = BASE + ".building"
        for stale in (building, BASE):
            if os.path.lexists(stale):
                shutil.rmtree(stale)
        log = os.path.join(CACHE, "fresh-debootstrap.log")
        command = ["debootstrap", "--variant=minbase", "--components=main", SUITE, building,
                   mirror]
        with open(log, "w") as out:
            try:
                result = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=subprocess.STDOUT, timeout=DEBOOTSTRAP_TIMEOUT,
                                        env=host_env())
            except subprocess.TimeoutExpired:
                raise Failed(f"debootstrap took over {DEBOOTSTRAP_TIMEOUT} s:\n"
                             + tail(log)) from None
        if result.returncode != 0:
            raise Failed(f"{' '.join(command)} exited {result.returncode}:\n" + tail(log))
        # debootstrap leaves these out; a real installation has them.
        with open(os.path.join(building, "etc/hosts"), "w") as f:
            f.write("127.0.0.1\tlocalhost\n"
                    "::1\tlocalhost ip6-localhost ip6-loopback\n"
                    "ff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
        with open(os.path.join(building, "etc/hostname"), "w") as f:
            f.write("fresh\n")
        for pattern in ("var/cache/apt/archives/*.deb", "var/lib/apt/lists/*_Packages",
                        "var/cache/apt/*.bin"):
            for path in glob.glob(os.path.join(building, pattern)):
                os.unlink(path)
        with open(os.path.join(building, MARKER), "w") as f:
            json.dump(recipe(), f)
        os.rename(building, BASE)
        return BASE, time.monotonic() - started


def copy_base(base):
    os.makedirs(RUNS, exist_ok=True)
    run_dir = tempfile.mkdtemp(prefix="run-", dir=RUNS)
    root = os.path.join(run_dir, "root")
    result = run(["cp", "-a", "--reflink=auto", base, root], COPY_TIMEOUT)
    if result.returncode != 0:
        raise Failed(f"cannot copy {base}: {result.stderr}")
    os.unlink(os.path.join(root, MARKER))
    return run_dir, root


def copy_source(root):
    """The files git tracks, as they are in the work tree (no build
    directories, nothing untracked), into /root/turnchat."""
    # safe.directory: root may run this in a checkout someone else owns.
    result = run(["git", "-c", "safe.directory=" + REPO, "-C", REPO, "ls-files", "-z"], 60)
    if result.returncode != 0:
        raise Failed(f"git ls-files in {REPO} failed (the test copies what git tracks):\n"
                     + result.stderr)
    target = os.path.join(root, SOURCE_IN_TREE)
    count = 0
    for name in result.stdout.split("\0"):
        source = os.path.join(REPO, name)
        if not name or not os.path.lexists(source) or os.path.isdir(source):
            continue  # deleted in the work tree, or a submodule
        os.makedirs(os.path.dirname(os.path.join(target, name)), exist_ok=True)
        shutil.copy2(source, os.path.join(target, name), follow_symlinks=False)
        count += 1
    if not os.path.exists(os.path.join(target, "meson.build")):
        raise Failed(f"no meson.build among the {count} files git tracks in {REPO}")
    return count


# ------------------------------------------------------------ processes

def descendants(pid):
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in glob.glob(f"/proc/{parent}/task/*/children"):
            try:
                children = [int(c) for c in open(task).read().split()]
            except OSError:
                continue
            found += children
            todo += children
    return found


def comm(pid):
    try:
        return open(f"/proc/{pid}/comm").read().strip()
    except OSError:
        return None


def socket_inodes(pid):
    inodes = set()
    for fd in glob.glob(f"/proc/{pid}/fd/*"):
        try:
            link = os.readlink(fd)
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(int(link[8:-1]))
    return inodes


def listeners(port):
    """{inode: address} of the TCP sockets listening on port, in the host's
    network namespace (which the container shares)."""
    found = {}
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, _, hex_port = fields[1].partition(":")
            if fields[3] != "0A" or int(hex_port, 16) != port:
                continue
            raw = bytes.fromhex(address)
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            found[int(fields[9])] = socket.inet_ntop(family, raw)
    return found


def port_free(port):
    """None when nothing holds port on the loopback addresses, else why not."""
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError as e:
                return f"{host} port {port}: {e}"
    return None


def processes_in(root):
    """Host PIDs of processes whose root directory is the tree (or inside it)."""
    left = []
    for proc in glob.glob("/proc/[0-9]*"):
        try:
            r = os.readlink(proc + "/root")
        except OSError:
            continue
        if r == root or r.startswith(root + "/"):
            left.append(int(proc[6:]))
    return left


def mounts_under(path):
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point == path or point.startswith(path + "/"):
                found.append(point)
    return found


# ------------------------------------------------------------ the conversation

def converse(host):
    """Two people pair in the default room, say a line each in turns, and
    one leaves; returns the transcript."""
    transcript = []
    clients = []

    def expect(who, client, check, what):
        line = client.line()
        transcript.append(f"{who} < {line}")
        if not check(line):
            raise Failed(f"{who} expected {what}, got {line!r}\n" + "\n".join(transcript))

    def say(who, client, text):
        transcript.append(f"{who} > {text}")
        client.send(text)

    try:
        cloud = Raw(PORT, host)
        clients.append(cloud)
        expect("Cloud", cloud, lambda l: l.startswith("HELLO turnchat 1 "), "HELLO")
        say("Cloud", cloud, "/name Cloud")
        say("Cloud", cloud, "/join")
        expect("Cloud", cloud, lambda l: l == "WAITING lobby", "WAITING lobby")
        barret = Raw(PORT, host)
        clients.append(barret)
        expect("Barret", barret, lambda l: l.startswith("HELLO turnchat 1 "), "HELLO")
        say("Barret", barret, "/name Barret")
        say("Barret", barret, "/join")
        expect("Barret", barret, lambda l: l == "PAIRED Cloud turns you", "PAIRED Cloud turns you")
        expect("Cloud", cloud, lambda l: l == "PAIRED Barret turns peer", "PAIRED Barret turns peer")
        say("Barret", barret, "Hey Cloud, you there?")
        expect("Cloud", cloud, lambda l: l == "MSG Hey Cloud, you there?", "Barret's line")
        say("Cloud", cloud, "Yeah. What do you want?")
        expect("Barret", barret, lambda l: l == "MSG Yeah. What do you want?", "Cloud's line")
        say("Barret", barret, "/q")
        expect("Barret", barret, lambda l: l.split()[:2] == ["BYE", "quit"], "BYE quit")
        expect("Cloud", cloud, lambda l: l.split()[:2] == ["BYE", "peer-quit"], "BYE peer-quit")
        expect("Barret", barret, lambda l: l == "", "the connection closed")
        expect("Cloud", cloud, lambda l: l == "", "the connection closed")
    except OSError as e:
        raise Failed(f"talking to turnchatd on {host} port {PORT}: {e}\n"
                     + "\n".join(transcript)) from None
    finally:
        for c in clients:
            c.close()
    return transcript


# ------------------------------------------------------------------ the test

def test_readme_start_command_on_a_fresh_debian_12():
    if os.geteuid() != 0:
        pytest.skip("needs root (debootstrap, systemd-nspawn)")
    missing = [c for c in ("debootstrap", "systemd-nspawn") if shutil.which(c, path=PATH) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} "
                    "(apt-get install debootstrap systemd-container)")
    with port_reserved(PORT):
        try:
            FreshRun().run()
        except Failed as e:
            pytest.fail(str(e), pytrace=False)


RESERVED_PORTS = "/proc/sys/net/ipv4/ip_local_reserved_ports"
PORT_WAIT = 70  # TIME-WAIT lasts 60 s


@contextlib.contextmanager
def port_reserved(port):
    """Keeps the kernel from handing port out as some connection's own local
    port (52928 is inside the ephemeral range) while the test needs it free
    for the start command's daemon, and waits until no connection uses it;
    puts the machine's setting back afterwards."""
    with open(RESERVED_PORTS) as f:
        before = f.read().strip()
    with open(RESERVED_PORTS, "w") as f:
        f.write(f"{before},{port}" if before else str(port))
    try:
        deadline = time.monotonic() + PORT_WAIT
        while port_free(port) and time.monotonic() < deadline:
            time.sleep(1)
        yield
    finally:
        with open(RESERVED_PORTS, "w") as f:
            f.write(before if before else "\n")


class FreshRun:
    def __init__(self):
        self.run_dir = self.root = self.nspawn = self.log_path = None
        self.daemon = None

    def output(self):
        if self.log_path is None:
            return ""
        return (f"\n--- the container's output, last lines (all of it is kept in "
                f"{LAST_OUTPUT}) ---\n" + tail(self.log_path))

    def run(self):
        started = time.monotonic()
        readme_command, command = start_command()
        busy = port_free(PORT)
        if busy:
            raise Failed(f"port {PORT} is already in use on this host ({busy}); the start "
                         "command's daemon listens there, so stop whatever holds it first")
        base, made = ensure_base()
        present = [p for p in BUILD_DEPENDENCIES if os.path.lexists(os.path.join(base, p))]
        if present:
            raise Failed(f"the cached base {base} is not pristine, it holds "
                         f"{', '.join('/' + p for p in present)}; delete it to have it made "
                         "again")
        failure = None
        try:
            self.run_dir, self.root = copy_base(base)
            copy_apt_config(self.root)
            files = copy_source(self.root)
            print(f"base tree {'made in %.0f s' % made if made else 'cached'}; "
                  f"{files} files copied; running, as root without sudo:\n  {command}\n"
                  f"(README: {readme_command})")
            self.start(command)
            address = self.wait_for_daemon()
            waited = time.monotonic() - started
            transcript = converse(address)
            print("\n".join(transcript))
            self.stop_daemon()
            print(f"listening {waited:.0f} s after the start, all done in "
                  f"{time.monotonic() - started:.0f} s")
        except Failed as e:
            failure = str(e) + self.output()
        except Exception as e:
            failure = f"{type(e).__name__}: {e}" + self.output()
        finally:
            cleanup_problem = self.cleanup()
        if failure or cleanup_problem:
            raise Failed("\n".join(p for p in (failure, cleanup_problem) if p))

    def start(self, command):
        self.log_path = os.path.join(self.run_dir, "output.log")
        with open(self.log_path, "w") as log:
            self.nspawn = subprocess.Popen(
                # A machine name of its own: nspawn keeps per-machine state
                # in /run under it, and the default (the directory's name,
                # "root") is what other test containers get too.
                ["systemd-nspawn", "-D", self.root, f"--machine=turnchat-fresh-{os.getpid()}",
                 "--register=no", "--keep-unit",
                 "--as-pid2", "--console=pipe", "--chdir=/" + SOURCE_IN_TREE,
                 "--setenv=DEBIAN_FRONTEND=noninteractive", "--setenv=HOME=/root",
                 "/bin/bash", "-c", command],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=host_env(), start_new_session=True)

    def wait_for_daemon(self):
        """Waits until the turnchatd the command started listens on the
        port; returns the loopback address to talk to it on."""
        deadline = time.monotonic() + COMMAND_TIMEOUT
        while True:
            # The listeners first, then the daemon's sockets: a listener
            # seen is then among them if it is the daemon's.
            listening = listeners(PORT)
            daemons = [p for p in descendants(self.nspawn.pid) if comm(p) == "turnchatd"]
            ours = set()
            for pid in daemons:
                ours |= socket_inodes(pid)
            foreign = sorted({a for inode, a in listening.items() if inode not in ours})
            if foreign:
                raise Failed(f"something other than the container's turnchatd listens on "
                             f"port {PORT} on this host ({', '.join(foreign)}); not talking "
                             "to it")
            if self.nspawn.poll() is not None:
                raise Failed(f"the start command ended (systemd-nspawn exited "
                             f"{self.nspawn.returncode}) before turnchatd listened on "
                             f"port {PORT}")
            if daemons and listening:
                self.daemon = daemons[0]
                addresses = set(listening.values())
                for preferred in ("127.0.0.1", "::1", "0.0.0.0", "::"):
                    if preferred in addresses:
                        return {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(preferred, preferred)
                raise Failed(f"turnchatd listens on port {PORT} but not on the loopback: "
                             f"{', '.join(sorted(addresses))}")
            if time.monotonic() > deadline:
                raise Failed(f"turnchatd did not listen on port {PORT} within "
                             f"{COMMAND_TIMEOUT} s of the start")
            time.sleep(0.5)

    def stop_daemon(self):
        """SIGTERM, as Ctrl-C would: the daemon exits 0, so do the command
        and the container."""
        os.kill(self.daemon, signal.SIGTERM)
        try:
            status = self.nspawn.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise Failed(f"the container was still running {STOP_TIMEOUT} s after "
                         "SIGTERM to turnchatd") from None
        if status != 0:
            raise Failed(f"after SIGTERM to turnchatd, the container exited {status}")

    def cleanup(self):
        """Ends the nspawn we started if it still runs, checks nothing is left
        (no process in the tree, no mount under it, the port free) and
        deletes the copy; returns what went wrong, or None."""
        problems = []
        if self.nspawn is not None and self.nspawn.poll() is None:
            # Without --boot, nspawn answers SIGTERM by killing the container.
            self.nspawn.send_signal(signal.SIGTERM)
            try:
                self.nspawn.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.nspawn.kill()
                self.nspawn.wait(STOP_TIMEOUT)
        if self.root is None:
            return None
        deadline = time.monotonic() + STOP_TIMEOUT
        while processes_in(self.root) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = processes_in(self.root)
        if left:
            problems.append(f"processes left in the container: {left}")
        mounts = mounts_under(self.run_dir)
        if mounts:
            problems.append(f"mounts left under the copy: {mounts}")
        if self.daemon is not None:
            busy = port_free(PORT)
            if busy:
                problems.append(f"port {PORT} still in use after the container stopped: {busy}")
        if self.log_path is not None:
            try:
                shutil.copy(self.log_path, LAST_OUTPUT)
            except OSError as e:
                problems.append(f"cannot keep the container's output in {LAST_OUTPUT}: {e}")
        if left or mounts:
            problems.append(f"the copy is kept in {self.run_dir}")
        else:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            if os.path.exists(self.run_dir):
                problems.append(f"cannot delete {self.run_dir}")
        return "\n".join(problems) or None
