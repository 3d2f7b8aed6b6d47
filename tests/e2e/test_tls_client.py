"""turnchat --tls against the real daemon: trust on first use with
known_hosts (first use, the same key, a changed key refused with status
76), and CA mode with a test CA (the right and a wrong host name)."""

import subprocess

import pytest

from conftest import client_env
from test_tls import make_certificate, pytestmark, tls_daemon, tls_raw  # noqa: F401
from turnchat_helpers import TIMEOUT, TURNCHAT, TURNCHATD, free_port, hello


def make_ca_pair(directory, names):
    """A test CA, and a server certificate for names signed by it: (ca, crt, key)."""
    ca_key, ca_crt = directory / "ca.key", directory / "ca.crt"
    key, csr, crt = directory / "srv.key", directory / "srv.csr", directory / "srv.crt"
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)  # noqa: E731
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", str(ca_key), "-out", str(ca_crt), "-days", "2",
        "-subj", "/CN=turnchat test CA")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={names[0]}")
    ext = directory / "san.ext"
    ext.write_text("subjectAltName=" + ",".join(f"DNS:{n}" for n in names) + "\n")
    run("openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(crt), "-days", "2", "-extfile", str(ext))
    key.chmod(0o644)
    return ca_crt, crt, key


def run_client(d, tmp_path, *args, host="127.0.0.1", settings="", partner_tls=False):
    """turnchat --tls as a script with nothing to say, and a partner: it
    leaves as soon as it is its turn. Returns the CompletedProcess."""
    conf = tmp_path / "client.conf"
    conf.write_text(f"tls_port = {d.tls_port};\nclient: {{ {settings} }};\n")
    proc = subprocess.Popen([TURNCHAT, "-c", str(conf), "--tls", "-n", "Cloud", *args, host],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=client_env(tmp_path))
    partner = None
    try:
        # Only a client that trusted the server joins; give it its turn.
        partner = hello(tls_raw(d.tls_port) if partner_tls else d.connect(), "Barret", "")
        try:
            line = partner.line(timeout=3)
            if line == "WAITING lobby":
                line = partner.line(timeout=3)
            if line == "PAIRED Cloud turns you":
                partner.send("Hi Cloud")
        except TimeoutError:
            pass
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
        if partner:
            partner.close()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out.decode(), err.decode())


def known_hosts(tmp_path):
    return tmp_path / ".local" / "state" / "turnchat" / "known_hosts"


def test_trust_on_first_use_then_the_same_key(tls_daemon, tmp_path):  # noqa: F811
    d = tls_daemon()
    fp = subprocess.run([TURNCHATD, "-c", str(d.config),
                         "--fingerprint"], capture_output=True, text=True).stdout.strip()
    first = run_client(d, tmp_path)
    assert first.returncode == 0, first
    assert f"first TLS connection to 127.0.0.1:{d.tls_port}; its key is {fp}." in first.stderr
    assert "(TLSv1.3, key remembered now)" in first.stdout
    assert "Paired with 'Barret'" in first.stdout
    assert ("Barret is connected without TLS: what you both write crosses their network "
            "unencrypted.") in first.stdout
    assert known_hosts(tmp_path).read_text() == f"127.0.0.1:{d.tls_port} {fp}\n"
    again = run_client(d, tmp_path)
    assert again.returncode == 0, again
    assert again.stderr == ""
    assert "(TLSv1.3, key as remembered)" in again.stdout


def test_both_on_tls_are_told_the_whole_way_is_encrypted(tls_daemon, tmp_path):  # noqa: F811
    d = tls_daemon()
    out = run_client(d, tmp_path, partner_tls=True)
    assert out.returncode == 0, out
    assert ("Both of you reach the server over TLS: nobody on the way can read this "
            "conversation.") in out.stdout
    assert "without TLS" not in out.stdout


def test_a_changed_key_is_refused_naming_both_and_the_line(tls_daemon, tmp_path):  # noqa: F811
    d = tls_daemon()
    path = known_hosts(tmp_path)
    path.parent.mkdir(parents=True)
    old = "SHA256:" + "A" * 43
    path.write_text(f"# a comment\nelsewhere:1 SHA256:xyz\n127.0.0.1:{d.tls_port} {old}\n")
    refused = run_client(d, tmp_path)
    assert refused.returncode == 76
    assert f"the TLS key of 127.0.0.1:{d.tls_port} has changed" in refused.stderr
    assert f"it was {old} ({path}, line 3)" in refused.stderr
    assert "remove line 3" in refused.stderr
    assert "Connected to" not in refused.stdout
    assert "Cloud" not in d.log()


def test_ca_mode_verifies_the_chain_and_the_host_name(make_daemon, tmp_path):
    ca, crt, key = make_ca_pair(tmp_path, ["localhost"])
    tls_port = free_port()
    d = make_daemon(settings=f"tls_port = {tls_port};",
                    server_settings=f'tls_certificate = "{crt}"; tls_key = "{key}";')
    d.tls_port = tls_port
    good = run_client(d, tmp_path, host="localhost", settings=f'tls_ca = "{ca}";')
    assert good.returncode == 0, good
    assert "certificate verified)" in good.stdout
    assert not known_hosts(tmp_path).exists()
    wrong = run_client(d, tmp_path, host="127.0.0.1", settings=f'tls_ca = "{ca}";')
    assert wrong.returncode == 76, wrong
    assert "its certificate is not trusted" in wrong.stderr
    (tmp_path / "other").mkdir()
    other_ca, _, _ = make_ca_pair(tmp_path / "other", ["localhost"])
    untrusted = run_client(d, tmp_path, host="localhost", settings=f'tls_ca = "{other_ca}";')
    assert untrusted.returncode == 76, untrusted
    assert "its certificate is not trusted" in untrusted.stderr


@pytest.mark.parametrize("value,message", [
    ('"relative/ca.pem"', 'is not an absolute path or "system"'),
    ("true", "expected a string"),
])
def test_tls_ca_setting_is_checked(tmp_path, value, message):
    conf = tmp_path / "bad.conf"
    conf.write_text(f"client: {{ tls_ca = {value}; }};\n")
    out = subprocess.run([TURNCHAT, "-c", str(conf), "--tls"], capture_output=True, text=True,
                         env=client_env(tmp_path))
    assert out.returncode == 78
    assert message in out.stderr


def test_a_plain_client_at_the_tls_port_is_told_to_add_tls(tls_daemon, tmp_path):  # noqa: F811
    d = tls_daemon()
    conf = tmp_path / "client.conf"
    conf.write_text(f"port = {d.tls_port};\n")
    out = subprocess.run([TURNCHAT, "-c", str(conf), "-n", "Cloud", "127.0.0.1"],
                         stdin=subprocess.DEVNULL, capture_output=True, text=True,
                         env=client_env(tmp_path), timeout=TIMEOUT + 10)
    assert out.returncode == 76, out
    assert (f"turnchat: 127.0.0.1 port {d.tls_port} said nothing in 10 seconds: not a "
            "turnchat server (if it is the TLS port, add --tls)") in out.stderr
