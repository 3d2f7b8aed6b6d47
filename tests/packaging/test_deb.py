"""The .deb files, built by packaging/build-deb from a clean clone: what
they hold, how they are split, lintian, hardening and maintainer scripts.
test_deb_install.py installs them for real."""

import glob
import os
import re

from conftest import REPO, need, run

CLIENT_FILES = {
    "/etc/turnchat.conf",
    "/usr/bin/turnchat",
    "/usr/share/doc/turnchat/README.md.gz",
    "/usr/share/doc/turnchat/changelog.Debian.gz",
    "/usr/share/doc/turnchat/copyright",
    "/usr/share/lintian/overrides/turnchat",
    "/usr/share/man/man1/turnchat.1.gz",
    "/usr/share/man/man5/turnchat.conf.5.gz",
    "/usr/share/man/man7/turnchat-protocol.7.gz",
}
DAEMON_FILES = {
    "/lib/systemd/system/turnchat.service",
    "/lib/systemd/system/turnchat.socket",
    "/lib/systemd/system-generators/turnchat-socket-generator",
    "/usr/sbin/turnchatd",
    "/usr/share/doc/turnchatd/changelog.Debian.gz",
    "/usr/share/doc/turnchatd/copyright",
    "/usr/share/doc/turnchatd/examples/inetd.conf.example",
    "/usr/share/doc/turnchatd/examples/turnchat.example",
    "/usr/share/lintian/overrides/turnchatd",
    "/usr/share/man/man8/turnchat-socket-generator.8.gz",
    "/usr/share/man/man8/turnchatd.8.gz",
}
PROGRAMS = ("usr/bin/turnchat", "usr/sbin/turnchatd",
            "lib/systemd/system-generators/turnchat-socket-generator")


def files_of(deb):
    """The non-directory paths in a .deb."""
    listing = run(["dpkg-deb", "-c", deb]).stdout.splitlines()
    return {line.split(None, 5)[5].lstrip(".") for line in listing if not line.startswith("d")}


def test_built_with_the_tests_run(debs):
    """dh_auto_test ran the unit and end-to-end suites, not the system suite."""
    assert set(debs.files) >= {"turnchat", "turnchatd"}, debs.files
    assert debs.changes, "no .changes file"
    assert re.search(r"turnchat:e2e / e2e +OK", debs.log), debs.log[-3000:]
    assert re.search(r"turnchat:unit / \w+ +OK", debs.log)
    assert not re.search(r"turnchat:(system|packaging) /", debs.log)


def test_lintian_clean(debs):
    """No error and no warning; an override only with its reason."""
    need("lintian")
    result = run(["lintian", "--display-level", ">=warning", *debs.changes], check=False,
                 timeout=600)
    tags = [line for line in result.stdout.splitlines() if re.match(r"[EW]: ", line)]
    assert tags == [], result.stdout
    assert result.returncode == 0, result.stdout + result.stderr
    for path in glob.glob(os.path.join(REPO, "packaging", "debian", "*lintian-overrides")):
        previous = ""
        for line in open(path).read().splitlines():
            if line and not line.startswith("#"):
                assert previous.startswith("#"), f"{path}: no reason above '{line}'"
            previous = line


def test_split(debs):
    """The client and its config in turnchat; the daemon, units, generator
    and examples in turnchatd, which depends on exactly this turnchat."""
    assert files_of(debs["turnchat"]) == CLIENT_FILES
    assert files_of(debs["turnchatd"]) == DAEMON_FILES
    version = run(["dpkg-deb", "-f", debs["turnchat"], "Version"]).stdout.strip()
    depends = run(["dpkg-deb", "-f", debs["turnchatd"], "Depends"]).stdout
    assert f"turnchat (= {version})" in depends
    assert "turnchatd" not in run(["dpkg-deb", "-f", debs["turnchat"], "Depends"]).stdout


def test_conffiles(debs, tmp_path):
    run(["dpkg-deb", "-e", debs["turnchat"], tmp_path / "client"])
    run(["dpkg-deb", "-e", debs["turnchatd"], tmp_path / "daemon"])
    assert (tmp_path / "client" / "conffiles").read_text() == "/etc/turnchat.conf\n"
    assert not (tmp_path / "daemon" / "conffiles").exists()


def test_maintainer_scripts(debs, tmp_path):
    """The socket is enabled and started, the service neither: systemd
    starts it on the first connection (see packaging/debian/rules).  The
    TLS pair is made at installation and removed on purge."""
    run(["dpkg-deb", "-e", debs["turnchatd"], tmp_path])
    postinst = (tmp_path / "postinst").read_text()
    assert "deb-systemd-helper enable 'turnchat.socket'" in postinst
    assert re.search(r"_dh_action=start\b", postinst)
    assert "deb-systemd-invoke $_dh_action 'turnchat.socket'" in postinst
    prerm = (tmp_path / "prerm").read_text()
    assert "deb-systemd-invoke stop 'turnchat.socket'" in prerm
    postrm = (tmp_path / "postrm").read_text()
    assert "deb-systemd-helper purge 'turnchat.socket'" in postrm
    assert "daemon-reload" in postrm
    for script in ("postinst", "prerm", "postrm"):
        assert "turnchat.service" not in (tmp_path / script).read_text(), script
    # The TLS pair: made before the socket starts, as ssh's host keys are;
    # gone on purge.
    assert postinst.index("turnchatd --make-certificate") < postinst.index("deb-systemd-helper")
    assert "rm -f /etc/turnchat/tls.key /etc/turnchat/tls.crt" in postrm
    client = tmp_path / "client"
    run(["dpkg-deb", "-e", debs["turnchat"], client])
    assert not [p for p in ("preinst", "postinst", "prerm", "postrm") if (client / p).exists()]


def test_hardening(debs, tmp_path):
    """hardening=+all: PIE, full RELRO (bind now), stack protector, fortify."""
    need("readelf")
    for name in ("turnchat", "turnchatd"):
        run(["dpkg-deb", "-x", debs[name], tmp_path])
    for program in PROGRAMS:
        path = tmp_path / program
        assert "DYN (Position-Independent Executable" in run(["readelf", "-h", path]).stdout
        dynamic = run(["readelf", "-d", path]).stdout
        assert re.search(r"\(FLAGS\)\s+BIND_NOW", dynamic), dynamic
        assert "GNU_RELRO" in run(["readelf", "-lW", path]).stdout
        symbols = run(["readelf", "--dyn-syms", "-W", path]).stdout
        assert "__stack_chk_fail" in symbols, program
        assert re.search(r"__\w+_chk@", symbols), program
