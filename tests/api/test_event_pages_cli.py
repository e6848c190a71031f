"""``arkserve service events``: the newest page (oldest first within it) with how many there are and the cursor of
older ones on stderr, ``--cursor`` for the next page back, and ``--all`` streaming every page newest first (one
JSON document oldest first with ``-o json``)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from arkserve.cli.main import cli
from tests.api.conftest import LiveApi


def _cli(api: LiveApi, *args: str) -> tuple[int, str, str]:
    env = {"ARKSERVE_ACCESS_KEY": api.admin_ak, "ARKSERVE_SECRET_KEY": api.admin_sk, "ARKSERVE_ENDPOINT": api.url}
    result = CliRunner().invoke(cli, ["service", "events", "wide", *args], env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _scales(out: str) -> list[str]:
    return [line.rsplit("scaled ", 1)[1] for line in out.splitlines() if "scaled " in line]


def test_events_first_page_cursor_and_all(live_api: LiveApi) -> None:
    with live_api.client() as c:
        c.post("/services", {"name": "wide", "image": "/usr/bin", "port": 27777, "command": "true", "replicas": 0})
        for n in range(1, 9):
            c.patch("/services/wide", {"replicas": n})  # 9 events: created, then scaled 0 -> 1, …, 7 -> 8
    code, out, err = _cli(live_api, "--limit", "4")
    assert code == 0, out + err
    assert _scales(out) == ["4 -> 5", "5 -> 6", "6 -> 7", "7 -> 8"]  # the newest page, oldest first
    assert "the 4 newest of 9 events" in err and "--cursor " in err
    code, out, err = _cli(live_api, "--limit", "4", "--cursor", err.split("--cursor ")[1].split()[0])
    assert code == 0 and _scales(out) == ["0 -> 1", "1 -> 2", "2 -> 3", "3 -> 4"], out + err
    code, out, err = _cli(live_api, "--limit", "4", "--all")
    lines = out.splitlines()
    assert code == 0 and err == "" and lines[0].split()[:2] == ["TIME", "KIND"], out + err
    assert _scales(out) == [f"{n - 1} -> {n}" for n in range(8, 0, -1)]  # every page, newest first
    assert len(lines) == 10 and "created" in lines[-1]  # one header, nine events
    code, out, err = _cli(live_api, "--limit", "2", "--all", "-o", "json")
    events = json.loads(out)
    assert code == 0 and [e["kind"] for e in events] == ["created"] + ["scaled"] * 8  # one document, oldest first
    assert [e["time"] for e in events] == sorted(e["time"] for e in events)
    code, out, err = _cli(live_api, "--limit", "0")
    assert code == 2 and "--limit" in err
