"""``arkserve model …`` and ``service create --mount`` against a live API: publish a local folder (streamed tar),
list, show, mount, the mounts in ``service get``, and exit codes of refusals."""

from __future__ import annotations

import json
import os
from pathlib import Path

from click.testing import CliRunner

from arkserve.cli.main import cli
from arkserve.cli.models import parse_mount
from tests.api.conftest import LiveApi


def _run(api: LiveApi, *args: str) -> tuple[int, str]:
    env = {"ARKSERVE_ACCESS_KEY": api.admin_ak, "ARKSERVE_SECRET_KEY": api.admin_sk, "ARKSERVE_ENDPOINT": api.url}
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


def test_publish_a_local_folder_then_list_show_mount_and_delete(live_api: LiveApi, tmp_path: Path) -> None:
    src = tmp_path / "flowers"
    (src / "sub").mkdir(parents=True)
    weights = os.urandom(3 * 1024 * 1024 + 17)  # not a multiple of 512: the tar padding must be right
    (src / "model.pth").write_bytes(weights)
    (src / "sub" / "class_indices.json").write_text('{"0": "daisy"}')
    (src / "README.md").write_text("# Flowers\n")
    code, out = _run(live_api, "model", "publish", "flowers-resnet34", "--version", "1", str(src),
                     "--task", "image-classification", "--framework", "pytorch", "--public")
    assert code == 0, out
    assert "published flowers-resnet34@1: sha256:" in out and "3 files" in out
    code, out = _run(live_api, "model", "show", "flowers-resnet34", "-o", "json")
    shown = json.loads(out)
    files = {f["path"]: f for f in shown["versions"][0]["files"]}
    assert set(files) == {"model.pth", "sub/class_indices.json", "README.md"}
    assert files["model.pth"]["size"] == len(weights) and shown["public"] is True
    digest = shown["versions"][0]["digest"]
    code, out = _run(live_api, "model", "list", "flowers", "--framework", "pytorch")
    assert code == 0 and "flowers-resnet34" in out and "image-classification" in out
    code, out = _run(live_api, "model", "publish", "flowers-resnet34", "--version", "1", str(src))
    assert code == 1 and "VersionExists" in out
    # a service mounting it and a disk folder; `service get` shows both
    (live_api.data_dir / "disks" / "admin" / "datasets" / "flowers").mkdir(parents=True)
    code, out = _run(live_api, "service", "create", "clf", "--image", "/usr/bin", "--port", "8000", "--command",
                     "python3 app.py", "--replicas", "0", "--mount", "model:flowers-resnet34@1:/ark/models",
                     "--mount", "disk:/datasets/flowers:/data:rw")
    assert code == 0, out
    code, out = _run(live_api, "service", "get", "clf")
    assert f"/ark/models  <- model flowers-resnet34@1 ({digest})  ro" in out
    assert "/data  <- disk /datasets/flowers  rw" in out
    code, out = _run(live_api, "model", "delete", "flowers-resnet34", "--yes")
    assert code == 1 and "ModelInUse" in out and "clf" in out
    code, out = _run(live_api, "service", "create", "bad", "--image", "/usr/bin", "--port", "8000", "--command",
                     "x", "--mount", "model:flowers-resnet34@1:/proc")
    assert code == 1 and "InvalidMount" in out
    assert _run(live_api, "service", "update", "clf", "--no-mounts")[0] == 0
    assert _run(live_api, "model", "delete", "flowers-resnet34", "--version", "1", "--yes")[0] == 0


def test_mount_syntax() -> None:
    assert parse_mount("model:flowers-resnet34@1:/ark/models") == {
        "source": "model", "ref": "flowers-resnet34@1", "mount_path": "/ark/models", "read_only": True}
    assert parse_mount("disk:/datasets/flowers:/data:rw") == {
        "source": "disk", "ref": "/datasets/flowers", "mount_path": "/data", "read_only": False}
    assert parse_mount("disk:/d:/data:ro")["read_only"] is True
    assert parse_mount("disk:/d:/data")["read_only"] is True
