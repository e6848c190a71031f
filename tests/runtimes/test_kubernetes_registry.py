"""Services on the Kubernetes runtime may run images from the platform registry (the runtime pulls them with a
pull Secret); the local runtime, which runs app directories, still refuses them."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from arkserve import settings as settings_mod
from arkserve.api.images import service_image
from arkserve.errors import ValidationFailed
from arkserve.store.db import open_store


@pytest.mark.parametrize(("kind", "accepted"), [("kubernetes", True), ("docker", True), ("local", False)])
def test_registry_images_run_on_runtimes_that_pull(tmp_path: Path, kind: str, accepted: bool) -> None:
    s = settings_mod.load({"data_dir": str(tmp_path), "runtime.kind": kind,
                           "registry.address": "registry.example.com"}, env={})
    store = open_store(f"sqlite:///{tmp_path / 'arkserve.db'}")
    ctx = SimpleNamespace(settings=s, store=store)
    alice = SimpleNamespace(username="alice", is_admin=False)
    try:
        if accepted:  # the short form resolves to the owner's repository, which they may pull
            assert service_image(ctx, alice, "flowers:1") == "registry.example.com/alice/flowers:1"  # type: ignore[arg-type]
            with pytest.raises(ValidationFailed, match="alice may not pull bob/secret"):
                service_image(ctx, alice, "registry.example.com/bob/secret:1")  # type: ignore[arg-type]
        else:
            with pytest.raises(ValidationFailed, match="registry images run on the Docker runtime"):
                service_image(ctx, alice, "registry.example.com/alice/flowers:1")  # type: ignore[arg-type]
    finally:
        store.engine.dispose()
