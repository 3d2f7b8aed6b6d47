"""TLS records that reach the daemon together: each line a record of its
own, all of them in one write. OpenSSL reads ahead of the record it hands
out, and what it holds epoll cannot see: every line must still be read at
once, without waiting for more input that never comes."""

import socket
import ssl

from test_tls import tls_daemon, tls_raw  # noqa: F401 (a fixture)
from turnchat_helpers import TIMEOUT, hello


class RecordClient:
    """A TLS client over memory BIOs, so that it chooses how its records
    travel: one write for many of them."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.tls = ctx.wrap_bio(self.incoming, self.outgoing)
        self.pending = b""
        self._pump(self.tls.do_handshake)

    def _pump(self, step):
        while True:
            try:
                result = step()
                self.sock.sendall(self.outgoing.read())
                return result
            except ssl.SSLWantReadError:
                self.sock.sendall(self.outgoing.read())
                data = self.sock.recv(65536)
                assert data, "the daemon closed the connection"
                self.incoming.write(data)

    def send_records(self, lines):
        """Each line in a record of its own, all in one write."""
        records = b""
        for line in lines:
            self.tls.write(line.encode() + b"\n")
            records += self.outgoing.read()
        self.sock.sendall(records)

    def line(self):
        while b"\n" not in self.pending:
            self.pending += self._pump(lambda: self.tls.read(65536))
        line, self.pending = self.pending.split(b"\n", 1)
        return line.decode()


def test_records_that_arrive_together_are_all_read(tls_daemon):  # noqa: F811
    d = tls_daemon(server_settings="rate_limit = 0;")
    cloud = hello(tls_raw(d.tls_port))
    cloud.send("/name Cloud")
    cloud.send("/mode free")
    cloud.send("/join")
    assert cloud.line() == "WAITING lobby"

    barret = RecordClient(d.tls_port)
    assert barret.line().startswith("HELLO turnchat 1 ")
    said = [f"line {i}" for i in range(200)]
    barret.send_records(["/name Barret", "/mode free", "/join"] + said)
    assert barret.line() == "PAIRED Cloud free -"
    assert cloud.line() == "PAIRED Barret free -"
    for text in said:
        assert cloud.line() == f"MSG {text}"
