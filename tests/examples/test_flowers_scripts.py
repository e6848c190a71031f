"""The flowers shell scripts: syntax, and build_base.sh's choice of Debian mirror from apt's sources."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.examples.flowers_support import FLOWERS

SCRIPTS = ["build_base.sh", "build.sh", "run.sh", "publish_model.sh"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_parses_and_is_executable(script: str) -> None:
    path = FLOWERS / script
    assert path.stat().st_mode & 0o111, f"{script} is not executable"
    done = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_run_sh_rejects_an_unknown_mode() -> None:
    done = subprocess.run([str(FLOWERS / "run.sh"), "kubernetes"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "usage" in done.stderr


DEB822 = """Types: deb
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main

Types: deb deb-src
# a comment
URIs: http://mirror.example/debian http://other.example/debian
Suites: bookworm bookworm-updates
Components: main
"""


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"sources.list": "deb http://one.example/debian bookworm main\n"}, "http://one.example/debian"),
        ({"sources.list": "# x\ndeb http://s.example/ds bookworm-security main\n"
                          "deb [arch=amd64 signed-by=/k.gpg] http://two.example/debian bookworm main\n"},
         "http://two.example/debian"),
        ({"sources.list.d/debian.sources": DEB822}, "http://mirror.example/debian"),
        ({"sources.list.d/other.list": "deb https://packages.example/apt stable main\n",
          "sources.list.d/debian.sources": DEB822}, "http://mirror.example/debian"),
    ],
    ids=["one-line", "one-line-options", "deb822", "skips-foreign"],
)
def test_build_base_reads_the_configured_mirror(tmp_path: Path, files: dict[str, str], expected: str) -> None:
    (tmp_path / "sources.list.d").mkdir()
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    done = subprocess.run([str(FLOWERS / "build_base.sh"), "--print-mirror"], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "APT_ETC": str(tmp_path)}, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected


def test_build_base_without_a_mirror_says_so(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    done = subprocess.run([str(FLOWERS / "build_base.sh"), "--print-mirror"], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "APT_ETC": str(tmp_path)}, timeout=30)
    assert done.returncode != 0 and "DEBIAN_MIRROR" in done.stderr
