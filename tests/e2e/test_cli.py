"""The two programs' command lines, config files and exit codes, and what
the client lets reach a terminal."""

import os
import socket
import subprocess

import pytest

from conftest import client_env
from turnchat_helpers import TIMEOUT, TURNCHAT, TURNCHATD, free_port, scripted_server

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "config")
SHIPPED = os.path.join(os.path.dirname(__file__), "..", "..", "etc", "turnchat.conf")


def run(args, tmp_path, **kw):
    return subprocess.run(args, env=client_env(tmp_path), capture_output=True, text=True,
                          timeout=TIMEOUT, stdin=subprocess.DEVNULL, **kw)


@pytest.mark.parametrize("program", [TURNCHAT, TURNCHATD])
def test_version_and_help(program, tmp_path):
    version = run([program, "--version"], tmp_path)
    assert version.returncode == 0
    assert version.stdout.startswith(os.path.basename(program) + " ")
    helped = run([program, "--help"], tmp_path)
    assert helped.returncode == 0 and "usage:" in helped.stdout
    bad = run([program, "--no-such-option"], tmp_path)
    assert bad.returncode == 64 and "usage:" in bad.stderr


def test_daemon_checks_shipped_config(tmp_path):
    """The shipped file is fine once its TLS pair exists, made as the
    packages (or, after meson install, the admin) make it; without the
    pair the error says what to run. Its paths are moved into tmp_path."""
    conf = tmp_path / "turnchat.conf"
    text = open(SHIPPED).read()
    assert '"/etc/turnchat/tls.crt"' in text and '"/etc/turnchat/tls.key"' in text
    conf.write_text(text.replace('"/etc/turnchat/', f'"{tmp_path}/etc/turnchat/'))
    result = run([TURNCHATD, "-t", "-c", str(conf)], tmp_path)
    if "built without TLS" in result.stderr:
        assert result.returncode == 0, result.stderr  # a warning only
        return
    assert result.returncode == 78
    assert f"run: turnchatd -c {conf} --make-certificate" in result.stderr
    made = run([TURNCHATD, "-c", str(conf), "--make-certificate"], tmp_path)
    assert made.returncode == 0, made.stderr
    result = run([TURNCHATD, "-t", "-c", str(conf)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "configuration OK\n"


def test_daemon_reports_every_error_with_file_and_line(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text('port = 70000;\nserver: {\n  max_lien = 5;\n  default_mode = "chat";\n};\n')
    result = run([TURNCHATD, "-t", "-c", str(conf)], tmp_path)
    assert result.returncode == 78
    assert f"{conf}:1: port" in result.stderr
    assert f"{conf}:3: server.max_lien" in result.stderr
    assert f"{conf}:4: server.default_mode" in result.stderr
    started = run([TURNCHATD, "-f", "-c", str(conf)], tmp_path)
    assert started.returncode == 78
    assert "not starting" in started.stderr


def test_daemon_explicit_config_must_exist(tmp_path):
    result = run([TURNCHATD, "-t", "-c", str(tmp_path / "missing.conf")], tmp_path)
    assert result.returncode == 78
    assert "missing.conf" in result.stderr


def test_daemon_port_in_use_is_a_clear_error(daemon, tmp_path):
    result = run([TURNCHATD, "-f", "-c", str(daemon.config)], tmp_path)
    assert result.returncode == 1
    assert "Address already in use" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["-p", "0"], "port '0'"),
    (["-p", "http"], "port 'http'"),
    (["-n", "two words"], "name 'two words'"),
    (["-r", "a/b"], "room 'a/b'"),
    (["-m", "chat"], "mode 'chat'"),
    (["host:99999"], "not host"),
    (["a", "b"], "too many arguments"),
])
def test_client_usage_errors_exit_64(args, message, tmp_path):
    result = run([TURNCHAT, *args], tmp_path)
    assert result.returncode == 64
    assert message in result.stderr


def test_client_config_error_exits_78(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text('client: { mode = "loud"; };\n')
    result = run([TURNCHAT, "-c", str(conf)], tmp_path)
    assert result.returncode == 78
    assert f"{conf}:1: client.mode" in result.stderr


def fake_server(lines, port_holder, received):
    """A server that says what a test wants, raw, then waits for /q."""
    return scripted_server([(b"", b"".join(lines)), (b"/q\n", b"BYE quit\n")], port_holder,
                           received)


def test_client_never_writes_control_characters_from_the_network(tmp_path):
    port, received = [], []
    thread = fake_server([
        b"HELLO turnchat 1 evil\x1b[2Jserver\n",
        b"PAIRED Mallory free -\n",
        b"MSG \x1b]0;pwned title\x07 and \x1b[2J and bare \x1b and \xc2\x9b csi and \x7f del\n",
        b"INFO \x1b[31mred\n",
        b"MSG bad bytes \xff\xfe\n",
    ], port, received)
    result = subprocess.run([TURNCHAT, "-H", "127.0.0.1", "-p", str(port[0]), "-n", "Victim"],
                            env=client_env(tmp_path), capture_output=True, timeout=TIMEOUT,
                            input=b"")
    thread.join(TIMEOUT)
    out = result.stdout
    for byte in [b"\x1b", b"\x07", b"\x7f", b"\xc2\x9b", b"\xff"]:
        assert byte not in out, byte
    assert b"Mallory: ^[]0;pwned title^G and ^[[2J and bare ^[ and <U+009B> csi and ^? del" in out
    assert b"^[[31mred" in out
    assert b"Mallory: bad bytes \\xFF\\xFE" in out
    assert b"evil^[[2Jserver" in out
    assert received and received[0].startswith(b"/caps action done resume\n/name Victim\n/mode turns\n/join\n")


def test_client_refuses_a_server_that_is_not_turnchat(tmp_path):
    port, received = [], []
    fake_server([b"SSH-2.0-OpenSSH_9.2\n"], port, received)
    result = run([TURNCHAT, "-H", "127.0.0.1", "-p", str(port[0])], tmp_path)
    assert result.returncode == 76
    assert "not a turnchat server" in result.stdout + result.stderr


def write_user_config(tmp_path, text):
    path = tmp_path / "xdg" / "turnchat"
    path.mkdir(parents=True, exist_ok=True)
    (path / "turnchat.conf").write_text(text)


def test_client_layers_user_config_then_c_then_options(make_daemon, tmp_path):
    d = make_daemon()
    wrong = free_port()
    # The user's own file says where the server is.
    write_user_config(tmp_path, f'host = "127.0.0.1";\nport = {d.port};\nclient: {{ name = "Tifa"; room = "bar"; }};\n')
    waiter = d.client("W", "bar")
    assert waiter.line() == "WAITING bar"
    result = subprocess.run([TURNCHAT], env=client_env(tmp_path), capture_output=True, text=True,
                            timeout=TIMEOUT, input="")
    assert waiter.line() == "PAIRED Tifa turns peer"
    assert result.returncode == 0, result.stderr  # its input ended on its turn: /q
    # -c overrides the user's file, and options override -c.
    override = tmp_path / "override.conf"
    override.write_text(f"port = {wrong};\n")
    refused = run([TURNCHAT, "-c", str(override)], tmp_path)
    assert refused.returncode == 69 and f"port number '{wrong}'" in refused.stderr
    waiter2 = d.client("W2", "bar")
    assert waiter2.line() == "WAITING bar"
    subprocess.run([TURNCHAT, "-c", str(override), "-p", str(d.port), "-n", "Aerith"],
                        env=client_env(tmp_path), capture_output=True, text=True,
                        timeout=TIMEOUT, input="")
    assert waiter2.line() == "PAIRED Aerith turns peer"
    # host:port on the command line wins over everything.
    waiter3 = d.client("W3", "bar")
    assert waiter3.line() == "WAITING bar"
    subprocess.run([TURNCHAT, "-c", str(override), f"127.0.0.1:{d.port}"], env=client_env(tmp_path),
                   capture_output=True, text=True, timeout=TIMEOUT, input="")
    assert waiter3.line() == "PAIRED Tifa turns peer"


def test_client_reports_refused_mode_plainly(make_daemon, tmp_path):
    d = make_daemon(server_settings='modes = ["turns"];')
    result = run([TURNCHAT, "-H", "127.0.0.1", "-p", str(d.port), "--free"], tmp_path)
    assert result.returncode == 64
    assert "the server refused: That mode is not offered here" in result.stdout


def test_ipv6_server_and_bracketed_client_address(make_daemon, tmp_path):
    d = make_daemon(host="::1")
    assert "listening on ::1 port" in d.log()
    waiter = socket.create_connection(("::1", d.port), timeout=TIMEOUT)
    waiter.sendall(b"/name V6\n/join\n")
    client = subprocess.Popen([TURNCHAT, f"[::1]:{d.port}", "-n", "Six"], env=client_env(tmp_path),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    client.stdin.write("hello over v6\n")
    client.stdin.close()
    data = b""
    while b"MSG hello over v6\n" not in data:
        chunk = waiter.recv(4096)
        assert chunk, data
        data += chunk
    waiter.sendall(b"/q\n")
    assert client.wait(TIMEOUT) == 0
    assert "Paired with 'V6'" in client.stdout.read()
    waiter.close()
