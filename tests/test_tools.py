"""The system-tool check that runs before any make goal (scripts/require_tools.sh).

Chromium and npm stay installed: environment overrides make the check believe a tool is
missing (``TVAE_CHROMIUM`` names a browser path that does not exist, ``TVAE_REQUIRE_PATH`` a
PATH without npm or apt-get) and ``TVAE_INSTALL`` says whether it may install; the install
branch runs a fake ``apt-get`` that logs its arguments and "installs" into the temp folder.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "require_tools.sh"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("MAKEFLAGS", None)
    env.pop("MAKELEVEL", None)
    env.update({"TVAE_CHROMIUM": str(tmp_path / "no-chromium"),
                "TVAE_REQUIRE_PATH": str(tmp_path / "empty-bin"), "TVAE_INSTALL": "no"})
    env.update(extra)
    (tmp_path / "empty-bin").mkdir(exist_ok=True)
    return env


def test_make_test_stops_before_any_work_without_chromium(tmp_path):
    """`make test` with Chromium and npm "missing" and no right to install: one line naming the
    command, a failing exit status, and nothing ran (no recipe echoed, no build stamp)."""
    stamp = REPO / "_build" / "smoke" / "build-start"
    before = stamp.stat().st_mtime_ns if stamp.exists() else None
    # MAKE=false PY=false: should the check ever let make through, its recipes fail at once
    # instead of running the whole test suite inside this test.
    r = subprocess.run(["make", "-C", str(REPO), "--no-print-directory", "test", "MAKE=false",
                        "PY=false"],
                       env=_env(tmp_path), capture_output=True, text=True, timeout=60)
    lines = (r.stdout + r.stderr).strip().splitlines()
    assert r.returncode != 0
    assert len(lines) == 1, lines
    assert "sudo apt-get install -y chromium npm" in lines[0], lines[0]
    assert "Chromium" in lines[0] and "make test" in lines[0]
    assert (stamp.stat().st_mtime_ns if stamp.exists() else None) == before, "a build started"


def test_only_the_missing_tool_is_named(tmp_path):
    npm_bin = tmp_path / "npm-bin"
    npm_bin.mkdir()
    (npm_bin / "npm").write_text("#!/bin/sh\nexit 0\n")
    (npm_bin / "npm").chmod(0o755)
    r = subprocess.run([str(SCRIPT), "test", "chromium", "npm"], cwd=REPO, capture_output=True,
                       text=True, env=_env(tmp_path, TVAE_REQUIRE_PATH=str(npm_bin)))
    assert r.returncode == 1
    assert r.stdout.strip().endswith("run `sudo apt-get install -y chromium` "
                                     "(or run make as root, which installs it)"), r.stdout
    assert "npm" not in r.stdout.split("run `")[0].replace("chromium", "")
    assert len(r.stdout.strip().splitlines()) == 1
    # Everything present: silent success.
    r = subprocess.run([str(SCRIPT), "test", "npm"], cwd=REPO, capture_output=True, text=True,
                       env=_env(tmp_path, TVAE_REQUIRE_PATH=str(npm_bin)))
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def test_missing_venv_module_names_python3_venv(tmp_path):
    """Before .venv exists, python3's venv module is needed (Debian's python3-venv)."""
    r = subprocess.run(["make", "-C", str(REPO), "--no-print-directory", "read",
                        f"VENV={tmp_path / 'no-venv'}"], capture_output=True, text=True,
                       env=_env(tmp_path, TVAE_PYTHON="/bin/false"), timeout=60)
    lines = (r.stdout + r.stderr).strip().splitlines()
    assert r.returncode != 0 and len(lines) == 1, lines
    assert "sudo apt-get install -y python3-venv" in lines[0]
    assert not (tmp_path / "no-venv").exists()


def test_installs_with_apt_when_allowed(tmp_path):
    """Allowed to install (root with apt-get, forced here by TVAE_INSTALL=yes): apt-get update,
    then install -y of the Debian package; success when the tool is then there."""
    fake = tmp_path / "fake-bin"
    fake.mkdir()
    log, browser = tmp_path / "apt.log", tmp_path / "chromium"
    (fake / "apt-get").write_text(
        f"#!/bin/sh\necho \"$@\" >> {log}\n"
        f"case \"$1\" in install) printf '#!/bin/sh\\n' > {browser}; chmod +x {browser};; esac\n")
    (fake / "apt-get").chmod(0o755)
    r = subprocess.run([str(SCRIPT), "test", "chromium"], cwd=REPO, capture_output=True,
                       text=True, env=_env(tmp_path, TVAE_REQUIRE_PATH=str(fake),
                                           TVAE_CHROMIUM=str(browser), TVAE_INSTALL="yes"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == ""
    assert log.read_text().splitlines() == ["update", "install -y --no-install-recommends chromium"]
    # An install that does not provide the tool: the one-line message after all.
    browser.unlink()
    (fake / "apt-get").write_text(f"#!/bin/sh\necho \"$@\" >> {log}\n")
    r = subprocess.run([str(SCRIPT), "test", "chromium"], cwd=REPO, capture_output=True,
                       text=True, env=_env(tmp_path, TVAE_REQUIRE_PATH=str(fake),
                                           TVAE_CHROMIUM=str(browser), TVAE_INSTALL="yes"))
    assert r.returncode == 1 and len(r.stdout.strip().splitlines()) == 1
    assert "sudo apt-get install -y chromium" in r.stdout
