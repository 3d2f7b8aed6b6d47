"""The version is written once, in meson's project(version:); the Debian
changelog, the RPM spec, the packages and both programs' --version agree
with it."""

import os
import re

from conftest import REPO, need, project_version, run

CHANGELOG = os.path.join(REPO, "packaging", "debian", "changelog")
SPEC = os.path.join(REPO, "packaging", "rpm", "turnchat.spec")


def debian_version():
    need("dpkg-parsechangelog")
    return run(["dpkg-parsechangelog", "-l", CHANGELOG, "-S", "Version"]).stdout.strip()


def spec_field(name):
    found = re.findall(rf"^{name}:\s*(\S+)", open(SPEC).read(), re.M)
    assert len(found) == 1, f"{SPEC} has {len(found)} {name}: lines"
    return found[0]


def test_changelog_and_spec_match_meson():
    version = project_version()
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), version
    upstream, _, revision = debian_version().rpartition("-")
    assert upstream == version, f"{CHANGELOG} is at {upstream}, meson.build at {version}"
    assert revision.isdigit()
    assert spec_field("Version") == version, f"{SPEC} Version: differs from meson.build"
    assert re.fullmatch(r"\d+%\{\?dist\}", spec_field("Release"))
    # The spec's newest %changelog entry names the same version.
    entry = re.search(r"^%changelog\n\*[^\n]*- (\S+)$", open(SPEC).read(), re.M)
    assert entry and entry.group(1).startswith(version + "-"), entry and entry.group(0)


def test_deb_versions(debs, tmp_path):
    version = project_version()
    for name in ("turnchat", "turnchatd"):
        field = run(["dpkg-deb", "-f", debs[name], "Version"]).stdout.strip()
        assert field == debian_version()
        run(["dpkg-deb", "-x", debs[name], tmp_path])
    for program in ("usr/bin/turnchat", "usr/sbin/turnchatd"):
        out = run([tmp_path / program, "--version"]).stdout.strip()
        assert out == f"{os.path.basename(program)} {version}"


def test_rpm_versions(rpms):
    for name in ("turnchat", "turnchatd"):
        got = run(["rpm", "-qp", "--qf", "%{VERSION}-%{RELEASE}", rpms[name]]).stdout
        assert got == f"{project_version()}-{spec_field('Release').split('%')[0]}"
