"""Names a command puts in an API path stay ONE segment of it: quoted (``/``, ``?``, ``%`` included), and ``.``,
``..`` or empty refused as a usage error (exit 2, nothing sent), since an HTTP client resolves dot segments:
unquoted, ``arkserve service delete ../keys/AK… --yes`` sent ``DELETE /api/v1/keys/AK…`` and deleted a key.
The commands run against a live API on loopback; the SDK's helpers and its own refusal are checked beside them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from arkserve.cli.main import cli
from arkserve.sdk.client import ApiError, Client, segment, segments
from tests.api.conftest import LiveApi, running_api


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    with running_api(tmp_path_factory.mktemp("api")) as live:
        with live.client() as c:
            c.post("/users", {"username": "alice", "password": "alice-password-123", "role": "user"})
        yield live


def _env(api: LiveApi) -> dict[str, str]:
    return {"ARKSERVE_ENDPOINT": api.url, "ARKSERVE_ACCESS_KEY": api.admin_ak, "ARKSERVE_SECRET_KEY": api.admin_sk,
            "ARKSERVE_CLI_CONFIG": os.devnull}


def _ark(api: LiveApi, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=_env(api), catch_exceptions=False)
    return result.exit_code, result.output


def _new_key(api: LiveApi) -> str:
    with api.client() as c:
        return str(c.post("/keys", {"username": "alice", "description": "victim"})["access_key"])


def _key_exists(api: LiveApi, ak: str) -> bool:
    with api.client() as c:
        try:
            c.get(f"/keys/{ak}")
        except ApiError as exc:
            assert exc.status == 404, exc
            return False
    return True


def test_service_delete_of_dot_dot_keys_is_a_usage_error_and_the_key_stays(api: LiveApi, tmp_path: Path) -> None:
    ak = _new_key(api)
    r = subprocess.run([sys.executable, "-m", "arkserve", "service", "delete", f"../keys/{ak}", "--yes"],
                       env={**os.environ, **_env(api)}, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"invalid service name '../keys/{ak}'" in r.stderr
    assert _key_exists(api, ak)


@pytest.mark.parametrize("name", ["..", ".", "", "../users/admin", "a/b", "a?b", "a%2e", "Upper", "a\n"])
def test_a_service_name_that_is_no_dns_label_exits_2(api: LiveApi, name: str) -> None:
    for args in (["service", "get", name], ["service", "delete", name, "--yes"], ["service", "logs", name],
                 ["service", "promote", name, "--yes"], ["invoke", name]):
        code, out = _ark(api, *args)
        assert code == 2 and "invalid service name" in out, (args, out)


@pytest.mark.parametrize("args", [
    ["key", "delete", "..", "--yes"], ["key", "disable", "."], ["user", "get", ".."], ["user", "delete", "", "--yes"],
    ["quota", "get", ".."], ["quota", "set", "..", "--max-gpus", "1"], ["image", "quota", "--user", "..",
                                                                        "--set-gib", "1"],
    ["model", "show", ".."], ["model", "delete", "m", "--version", "..", "--yes"],
    ["model", "delete", "m", "--version", "", "--yes"], ["instance-type", "delete", ".."], ["async", "get", ".."],
    ["image", "delete", "team/../x", "--yes"], ["image", "tags", "/"], ["image", "visibility", "./app", "public"],
])
def test_a_dot_or_empty_segment_exits_2_before_anything_is_sent(api: LiveApi, args: list[str]) -> None:
    code, out = _ark(api, *args)
    assert code == 2 and "Error: invalid " in out, out


def _percent_encoded(ak: str) -> str:
    return f"{ak[:-1]}%{ord(ak[-1]):02X}"


@pytest.mark.parametrize("spell", [lambda ak: f"{ak}?x=1", _percent_encoded], ids=["question-mark", "percent"])
def test_a_key_name_with_question_mark_or_percent_is_one_segment(api: LiveApi, spell: Callable[[str], str]) -> None:
    """Unquoted, each of these named the key itself (a query, a %XX the server decodes)."""
    ak = _new_key(api)
    code, out = _ark(api, "key", "delete", spell(ak), "--yes")
    assert code == 1 and "KeyNotFound" in out, out
    assert _key_exists(api, ak)


def test_a_key_name_with_a_slash_exits_2_and_the_key_stays(api: LiveApi) -> None:
    ak = _new_key(api)
    code, out = _ark(api, "key", "delete", f"x/../{ak}", "--yes")
    assert code == 2 and f"invalid access key 'x/../{ak}': it cannot contain '/'" in out, out
    assert _key_exists(api, ak)


def test_model_delete_of_a_name_with_a_slash_exits_2_and_deletes_no_version(api: LiveApi, tmp_path: Path) -> None:
    """The API's server decodes ``%2F`` before routing: ``model delete m/versions/2`` deleted version 2 of ``m``
    and said it had deleted the whole model ``m/versions/2``."""
    (tmp_path / "weights.bin").write_bytes(b"w")
    for version in ("1", "2"):
        code, out = _ark(api, "model", "publish", "slashed", "--version", version, str(tmp_path))
        assert code == 0, out
    code, out = _ark(api, "model", "delete", "slashed/versions/2", "--yes")
    assert code == 2, out
    assert "invalid model name 'slashed/versions/2': it cannot contain '/'" in out
    assert "deleted" not in out
    code, out = _ark(api, "model", "delete", "slashed", "--version", "2/../1", "--yes")
    assert code == 2 and "invalid version '2/../1'" in out, out
    with api.client() as c:
        assert [v["version"] for v in c.get("/models/slashed")["versions"]] == ["1", "2"]


@pytest.mark.parametrize("args", [
    ["user", "get", "a/b"], ["user", "delete", "alice/x", "--yes"], ["user", "set-role", "alice/x", "admin"],
    ["quota", "get", "alice/x"], ["instance-type", "delete", "cpu.small/x"], ["async", "get", "ar_x/result"],
    ["key", "disable", "AK/x"], ["model", "show", "a/b"], ["model", "publish", "a/b", "--version", "1", "--disk", "d"],
])
def test_a_name_with_a_slash_exits_2_before_anything_is_sent(api: LiveApi, args: list[str]) -> None:
    code, out = _ark(api, *args)
    assert code == 2 and "': it cannot contain '/'" in out, (args, out)


@pytest.mark.parametrize("name", ["admin?x=1", "ad%6Din", "ad%2Fmin"])
def test_a_user_name_reaches_the_api_as_one_segment(api: LiveApi, name: str) -> None:
    code, out = _ark(api, "user", "get", name, "-o", "json")
    assert code == 1 and "NotFound" in out and '"username"' not in out, out
    code, out = _ark(api, "user", "get", "admin", "-o", "json")
    assert code == 0 and '"username": "admin"' in out, out


def test_the_sdk_quotes_one_segment_and_refuses_dot_segments() -> None:
    assert segment("a%2Fb?c%d#e f") == "a%252Fb%3Fc%25d%23e%20f"
    assert segments("/team//app:v1/") == "team/app%3Av1"
    for bad in ("", ".", "..", "m/versions/2", "/"):  # the server decodes %2F before routing: never one name
        with pytest.raises(ValueError, match="invalid service name"):
            segment(bad, "service name")
    for bad in ("", "/", "a/../b", "./a", "a/."):
        with pytest.raises(ValueError, match="invalid disk path"):
            segments(bad, "disk path")
    with Client("http://127.0.0.1:9", "AK", "c2VjcmV0") as c:  # never reached: refused before sending
        with pytest.raises(ValueError, match=r"'\.\.' segment"):
            c.delete("/services/../keys/AK")
        with pytest.raises(ValueError, match=r"'\.\.' segment"):
            c.get("/services/./x")
        with pytest.raises(ValueError, match=r"'\.\.' segment"):
            next(c.stream_text("/services/../logs"))
        with pytest.raises(ApiError):  # a dot in a query or inside a segment is fine: this one is sent
            c.get("/services/a..b", since="../x")


def test_the_cli_checks_service_names_without_loading_pydantic() -> None:
    code = "import sys, arkserve.cli.services; print('pydantic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
