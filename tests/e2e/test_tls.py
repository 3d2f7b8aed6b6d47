"""TLS on its own port, against the real daemon: Python's ssl module and
the TLS clients nobody here wrote (openssl s_client, gnutls-cli, ncat
--ssl), next to plain-text users; the wrong protocol on either port;
certificate reload; what each side is told about encryption."""

import os
import pathlib
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest

from turnchat_helpers import (TIMEOUT, TURNCHATD, Daemon, Raw, Tool, free_port, hello,
                              tls_over, wait_for)

pytestmark = pytest.mark.skipif(
    "built without TLS" in subprocess.run([TURNCHATD, "-c", "/dev/null", "--fingerprint"],
                                          capture_output=True, text=True).stderr,
    reason="turnchatd built without TLS (-Dtls=disabled)")


def make_certificate(directory, name="tls"):
    """A self-signed pair made by turnchatd --make-certificate; (crt, key)."""
    crt, key = directory / f"{name}.crt", directory / f"{name}.key"
    conf = directory / f"{name}-make.conf"
    conf.write_text(f'server: {{ tls_certificate = "{crt}"; tls_key = "{key}"; }};\n')
    out = subprocess.run([TURNCHATD, "-c", str(conf), "--make-certificate"],
                         capture_output=True, text=True, check=True).stdout
    assert "made" in out and "SHA256:" in out, out
    crt.chmod(0o644)
    key.chmod(0o644)  # the test daemon drops to nobody; a reload reads it again
    return crt, key


def fingerprint(crt):
    conf = crt.parent / "fp.conf"
    conf.write_text(f'server: {{ tls_certificate = "{crt}"; tls_key = "{crt}"; }};\n')
    return subprocess.run([TURNCHATD, "-c", str(conf), "--fingerprint"], capture_output=True,
                          text=True, check=True).stdout.strip()


@pytest.fixture
def tls_daemon(make_daemon, tmp_path):
    """make(server_settings=""): a daemon serving TLS on d.tls_port too."""
    def make(server_settings="", settings=""):
        crt, key = make_certificate(tmp_path)
        tls_port = free_port()
        d = make_daemon(settings=f"tls_port = {tls_port};\n{settings}",
                        server_settings=f'tls_certificate = "{crt}"; tls_key = "{key}";\n'
                                        f"{server_settings}")
        d.tls_port, d.crt, d.key = tls_port, crt, key
        return d
    return make


def tls_raw(port, host="127.0.0.1"):
    """A Raw over TLS that checks no certificate (the tests check the key)."""
    return tls_over(socket.create_connection((host, port), timeout=TIMEOUT))


TOOLS = {
    "openssl s_client": lambda port: ["openssl", "s_client", "-quiet", "-connect",
                                      f"127.0.0.1:{port}"],
    "gnutls-cli": lambda port: ["gnutls-cli", "--insecure", "--port", str(port), "127.0.0.1"],
    "ncat --ssl": lambda port: ["ncat", "--ssl", "127.0.0.1", str(port)],
}


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_tls_clients_nobody_here_wrote_converse(tls_daemon, tool):
    if shutil.which(TOOLS[tool](0)[0]) is None:
        pytest.skip(f"{tool} is not installed")
    d = tls_daemon()
    cloud = Tool(TOOLS[tool](d.tls_port))
    try:
        cloud.expect("HELLO turnchat 1 turnchatd")
        cloud.send("/name Cloud")
        cloud.send("/join")
        cloud.expect("WAITING lobby")
        barret = tls_raw(d.tls_port)
        hello(barret, "Barret", "")
        assert barret.line() == "PAIRED Cloud turns you"
        cloud.expect("PAIRED Barret turns peer")
        barret.send("Hey Cloud, you there?")
        cloud.expect("MSG Hey Cloud, you there?")
        cloud.send("Yeah. What do you want?")
        assert barret.line() == "MSG Yeah. What do you want?"
        cloud.send("/q")
        cloud.expect("BYE quit")
        assert barret.line() == "BYE peer-quit"
    finally:
        cloud.close()


def test_tls_user_is_told_when_the_partner_is_in_plain_text(tls_daemon):
    d = tls_daemon()
    cloud = hello(tls_raw(d.tls_port), "Cloud", "")
    assert cloud.line() == "WAITING lobby"
    barret = d.client("Barret", "")
    # The plain-text user sees exactly version 1.
    assert barret.line() == "PAIRED Cloud turns you"
    assert cloud.line() == "PAIRED Barret turns peer"
    assert cloud.line() == ("INFO Barret is connected without TLS: what you both write "
                            "crosses their network unencrypted.")
    barret.send("hi")
    assert cloud.line() == "MSG hi"
    assert barret.quiet()


@pytest.mark.parametrize("other_tls,secure", [(True, "yes"), (False, "no")])
def test_secure_capability_says_whether_all_of_it_is_encrypted(tls_daemon, other_tls, secure):
    d = tls_daemon()
    cloud = hello(tls_raw(d.tls_port))
    cloud.send("/caps secure")
    assert cloud.line() == "CAPS secure"
    cloud.send("/name Cloud")
    cloud.send("/join")
    assert cloud.line() == "WAITING lobby"
    barret = hello(tls_raw(d.tls_port) if other_tls else d.connect())
    barret.send("/caps secure")
    assert barret.line() == "CAPS secure"
    barret.send("/join")
    assert barret.line() == "PAIRED Cloud turns you"
    assert barret.line() == f"SECURE {secure}"
    assert cloud.line() == "PAIRED guest turns peer"
    assert cloud.line() == f"SECURE {secure}"


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_plain_text_at_the_tls_port_is_told_where_to_go(tls_daemon):
    d = tls_daemon()
    raw = Raw(d.tls_port)
    raw.send("/name Cloud")
    assert raw.line() == f"BYE protocol This port speaks TLS; plain text goes to port {d.port}"
    assert raw.closed()
    d.wait_for_log("plain text arrived on the TLS port")
    assert d.log().count("plain text arrived on the TLS port") == 1


def test_tls_handshake_at_the_plain_port_is_closed_at_once_without_spinning(tls_daemon):
    d = tls_daemon()
    before = cpu_seconds(d.proc.pid)
    started = time.monotonic()
    out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{d.port}"],
                         stdin=subprocess.DEVNULL, capture_output=True, timeout=TIMEOUT)
    assert out.returncode != 0
    assert time.monotonic() - started < 3
    d.wait_for_log(f"a TLS handshake at the plain-text port (TLS is port {d.tls_port}); closing")
    time.sleep(1)
    assert cpu_seconds(d.proc.pid) - before < 0.3
    assert d.log().count("a TLS handshake at the plain-text port") == 1


def test_old_tls_versions_are_refused_in_words(tls_daemon):
    d = tls_daemon()
    out = subprocess.run(["openssl", "s_client", "-tls1_1", "-connect", f"127.0.0.1:{d.tls_port}"],
                         stdin=subprocess.DEVNULL, capture_output=True, timeout=TIMEOUT)
    assert out.returncode != 0
    d.wait_for_log("the other side offers only TLS versions older than 1.2")
    # TLS 1.2 itself is fine.
    out = subprocess.run(["openssl", "s_client", "-quiet", "-tls1_2", "-connect",
                          f"127.0.0.1:{d.tls_port}"], input=b"/q\n", capture_output=True,
                         timeout=TIMEOUT)
    assert b"HELLO turnchat 1 turnchatd" in out.stdout and b"BYE quit" in out.stdout


def test_stalled_and_garbage_handshakes_cost_nothing_and_end(tls_daemon):
    d = tls_daemon(server_settings="join_timeout = 2;")
    before = cpu_seconds(d.proc.pid)
    stalled = socket.create_connection(("127.0.0.1", d.tls_port))
    garbage = socket.create_connection(("127.0.0.1", d.tls_port))
    garbage.sendall(b"\x16\x03\x01\x00\x10" + os.urandom(16))
    # Garbage ends at once (with a TLS alert); the stalled one at the join timeout.
    garbage.settimeout(TIMEOUT)
    answer = b""
    while chunk := garbage.recv(100):
        answer += chunk
    assert answer == b"" or answer[0] == 0x15, answer
    stalled.settimeout(TIMEOUT)
    started = time.monotonic()
    while stalled.recv(4096):
        pass
    # Dropped at the join timeout: no BYE can reach it, so no grace for one.
    assert 1 < time.monotonic() - started < 4.5
    d.wait_for_log("no TLS handshake in time (a client without TLS?); closing")
    assert cpu_seconds(d.proc.pid) - before < 0.3
    assert "TLS handshake failed" in d.log()
    # Someone honest is served all along.
    cloud = hello(tls_raw(d.tls_port), "Cloud", "")
    assert cloud.line() == "WAITING lobby"


def peer_fingerprint(port):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)) as s:
        der = s.getpeercert(binary_form=True)
    pem = ssl.DER_cert_to_PEM_cert(der)
    path = f"/tmp/turnchat-peer-{os.getpid()}-{port}.crt"
    with open(path, "w") as f:
        f.write(pem)
    try:
        return fingerprint(pathlib.Path(path))
    finally:
        os.unlink(path)


def test_reload_puts_a_renewed_certificate_in_force_without_dropping_anyone(tls_daemon, tmp_path):
    d = tls_daemon()
    old = fingerprint(d.crt)
    assert peer_fingerprint(d.tls_port) == old
    cloud = hello(tls_raw(d.tls_port), "Cloud", "")
    assert cloud.line() == "WAITING lobby"
    barret = hello(tls_raw(d.tls_port), "Barret", "")
    assert barret.line() == "PAIRED Cloud turns you"
    assert cloud.line() == "PAIRED Barret turns peer"

    # A broken renewal: the old pair stays, and the log says why.
    good_crt = d.crt.read_text()
    d.crt.write_text("not a certificate\n")
    d.proc.send_signal(signal.SIGHUP)
    d.wait_for_log("the certificate in force stays")
    assert peer_fingerprint(d.tls_port) == old

    # A real renewal: new connections get it, the conversation goes on.
    new_dir = tmp_path / "renewed"
    new_dir.mkdir()
    new_crt, new_key = make_certificate(new_dir)
    d.crt.write_text(new_crt.read_text())
    d.key.write_text(new_key.read_text())
    d.proc.send_signal(signal.SIGHUP)
    d.wait_for_log(f"TLS certificate {d.crt} loaded")
    new = fingerprint(d.crt)
    assert new != old and good_crt != d.crt.read_text()
    wait_for(lambda: peer_fingerprint(d.tls_port) == new, "the new certificate in force")
    barret.send("still here?")
    assert cloud.line() == "MSG still here?"


def test_broken_certificate_at_start_is_an_error(tmp_path):
    conf = tmp_path / "broken.conf"
    crt = tmp_path / "missing.crt"
    conf.write_text(f'server: {{ tls_certificate = "{crt}"; tls_key = "{crt}"; }};\n')
    out = subprocess.run([TURNCHATD, "-t", "-c", str(conf)], capture_output=True, text=True)
    assert out.returncode == 78
    assert f"turnchatd: TLS: cannot read {crt}: No such file or directory" in out.stderr
    # Missing, both: the error names the command that makes them.
    assert f"run: turnchatd -c {conf} --make-certificate" in out.stderr
    crt.write_text("not a certificate\n")
    out = subprocess.run([TURNCHATD, "-t", "-c", str(conf)], capture_output=True, text=True)
    assert out.returncode == 78
    assert f"turnchatd: TLS: {crt}: cannot use the certificate" in out.stderr
    assert "--make-certificate" not in out.stderr


def test_make_certificate_never_overwrites(tmp_path):
    crt, key = make_certificate(tmp_path)
    before = (crt.read_text(), key.read_text())
    conf = tmp_path / "again.conf"
    conf.write_text(f'server: {{ tls_certificate = "{crt}"; tls_key = "{key}"; }};\n')
    out = subprocess.run([TURNCHATD, "-c", str(conf), "--make-certificate"], capture_output=True,
                         text=True)
    assert out.returncode == 0 and "exist already" in out.stdout
    key.unlink()
    out = subprocess.run([TURNCHATD, "-c", str(conf), "--make-certificate"], capture_output=True,
                         text=True)
    assert out.returncode == 1 and f"{crt} already exists; nothing was changed" in out.stderr
    assert crt.read_text() == before[0]


def test_make_certificate_makes_the_directory(tmp_path):
    """As a package's post-install script runs it: /etc/turnchat/ need not exist."""
    directory = tmp_path / "etc" / "turnchat"
    conf = tmp_path / "make.conf"
    conf.write_text(f'server: {{ tls_certificate = "{directory}/tls.crt"; '
                    f'tls_key = "{directory}/tls.key"; }};\n')
    out = subprocess.run([TURNCHATD, "-c", str(conf), "--make-certificate"], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    assert (directory.stat().st_mode & 0o777) == 0o755
    assert ((directory / "tls.key").stat().st_mode & 0o777) == 0o600
    assert out.stdout.splitlines()[-1] == fingerprint(directory / "tls.crt")


def test_require_tls_turns_away_plain_text_from_beyond_this_host(tls_daemon):
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 for a network namespace")
    ns = f"tctls{os.getpid()}"
    host_if, ns_if = f"tch{os.getpid() % 100000}", f"tcn{os.getpid() % 100000}"
    subnet = 10 + os.getpid() % 200
    here, there = f"10.213.{subnet}.1", f"10.213.{subnet}.2"
    run = lambda *a: subprocess.run(a, check=True)  # noqa: E731
    run("ip", "netns", "add", ns)
    try:
        run("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        run("ip", "link", "set", ns_if, "netns", ns)
        run("ip", "addr", "add", f"{here}/30", "dev", host_if)
        run("ip", "link", "set", host_if, "up")
        run("ip", "netns", "exec", ns, "ip", "addr", "add", f"{there}/30", "dev", ns_if)
        run("ip", "netns", "exec", ns, "ip", "link", "set", ns_if, "up")
        run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        # One daemon on loopback, one on the veth address, both requiring TLS.
        d = tls_daemon(server_settings="require_tls = true;")
        tls_port = free_port()
        (d.config.parent / "far").mkdir()
        far = Daemon(d.config.parent / "far", settings=f"tls_port = {tls_port};",
                     server_settings=f'tls_certificate = "{d.crt}"; tls_key = "{d.key}";\n'
                                     "require_tls = true;", host=here)
        try:
            plain = subprocess.run(["ip", "netns", "exec", ns, "nc", "-q", "2", here,
                                    str(far.port)], input=b"/join\n", capture_output=True,
                                   timeout=TIMEOUT)
            assert plain.stdout.decode().splitlines() == [
                "HELLO turnchat 1 turnchatd",
                f"BYE tls-required Connect with TLS, on port {tls_port}"]
            encrypted = subprocess.run(["ip", "netns", "exec", ns, "openssl", "s_client",
                                        "-quiet", "-connect", f"{here}:{tls_port}"],
                                       input=b"/join\n/q\n", capture_output=True,
                                       timeout=TIMEOUT)
            assert b"WAITING lobby" in encrypted.stdout
        finally:
            far.stop()
        # From this host, plain text is still welcome.
        local = d.client("Cloud", "")
        assert local.line() == "WAITING lobby"
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
