"""deploy/systemd: the unit renders and passes `systemd-analyze verify`; it stops arkserve the ordered way."""

from __future__ import annotations

import getpass
import shutil
import subprocess
import sys
from pathlib import Path

from tests.required import unavailable

DEPLOY = Path(__file__).parents[2] / "deploy" / "systemd"


def _render(data_dir: Path, *extra: str) -> str:
    arkserve = Path(sys.executable).with_name("arkserve")
    out = subprocess.run(["sh", str(DEPLOY / "render.sh"), "--user", getpass.getuser(), "--data-dir", str(data_dir),
                          "--arkserve", str(arkserve), *extra], capture_output=True, text=True, check=True)
    return out.stdout


def test_the_unit_renders_and_verifies(tmp_path: Path) -> None:
    unit = _render(tmp_path / "data", "--up-args", "--runtime docker")
    assert "@" not in unit  # every placeholder filled
    arkserve = Path(sys.executable).with_name("arkserve")
    assert f"ExecStart={arkserve} up --data-dir {tmp_path / 'data'} --runtime docker\n" in unit
    assert "KillMode=mixed" in unit  # SIGTERM to `up` only: it stops the parts in order
    assert f"User={getpass.getuser()}" in unit
    if shutil.which("systemd-analyze") is None:
        unavailable("ARKSERVE_REQUIRE_SYSTEMD", "systemd-analyze not installed (apt-get install systemd)")
    path = tmp_path / "arkserve.service"
    path.write_text(unit)
    res = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert [line for line in res.stderr.splitlines() if "arkserve.service" in line] == [], res.stderr


def test_a_broken_unit_fails_verification(tmp_path: Path) -> None:  # the check above can fail
    if shutil.which("systemd-analyze") is None:
        unavailable("ARKSERVE_REQUIRE_SYSTEMD", "systemd-analyze not installed (apt-get install systemd)")
    path = tmp_path / "arkserve.service"
    path.write_text(_render(tmp_path / "data").replace("KillMode=mixed", "KillMode=sometimes"))
    res = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True)
    assert "arkserve.service" in res.stderr and "kill mode" in res.stderr.lower()
