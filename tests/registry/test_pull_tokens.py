"""A Kubernetes node pulls a replica's image with the pull token the reconciler minted: the registry's real
token flow (401 with a Bearer challenge, the token service with ``ark-pull-token`` Basic credentials, the
manifest with the token it gives) against the real registry and token service. The token is re-issued for at
most the pulls it holds, and never past its own expiry: another repository, a push, a forged or expired token
are refused."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx

from arkserve.registry.pulls import RegistryPulls
from arkserve.registry.tokens import PULL_USER, Access, TokenSigner
from arkserve.store.db import open_store
from tests.registry.test_image_pages import MANIFEST, Registry, running_registry


def _challenge(http: httpx.Client, url: str) -> dict[str, str]:
    first = http.get(url, headers={"Accept": MANIFEST})
    assert first.status_code == 401, first.text
    return dict(re.findall(r'(\w+)="([^"]*)"', first.headers["www-authenticate"]))


def _node_pull(r: Registry, repo: str, password: str) -> httpx.Response:
    """What containerd does for ``image: <registry>/<repo>:v1`` with the pull Secret's user name and password."""
    url = f"{r.registry_url}/v2/{repo}/manifests/v1"
    with httpx.Client(timeout=30, trust_env=False) as http:
        c = _challenge(http, url)
        token = http.get(c["realm"], params={"service": c["service"], "scope": c["scope"]},
                         auth=(PULL_USER, password))
        if token.status_code != 200:
            return token
        return http.get(url, headers={"Accept": MANIFEST, "Authorization": f"Bearer {token.json()['token']}"})


def test_a_node_pulls_exactly_the_image_its_pull_token_names(tmp_path: Path) -> None:
    with running_registry(tmp_path) as r:
        r.add_user("alice")
        r.push("alice", "alice/app")
        r.push("alice", "alice/other")
        address = r.registry_url.removeprefix("http://")
        store = open_store(f"sqlite:///{tmp_path / 'data' / 'arkserve.db'}")
        try:
            with store.read() as conn:
                pull = RegistryPulls(address, tmp_path / "data").token_for(conn, f"{address}/alice/app:v1",
                                                                           "alice", False)
        finally:
            store.dispose()
        got = _node_pull(r, "alice/app", pull)
        assert got.status_code == 200 and got.json()["mediaType"] == MANIFEST, got.text
        other = _node_pull(r, "alice/other", pull)
        assert other.status_code == 403 and "only the image it was issued for" in other.json()["message"]
        with httpx.Client(timeout=30, trust_env=False) as http:  # a push scope is never granted from a pull token
            push = http.get(f"{r.api_url}/api/v1/registry/token", auth=(PULL_USER, pull),
                            params={"service": "arkserve", "scope": "repository:alice/app:pull,push"})
            assert push.status_code == 200
            held = TokenSigner.from_data_dir(tmp_path / "data").verify(push.json()["token"])
            assert held is not None and held[1] == [Access("repository", "alice/app", ("pull",))]
        forged = TokenSigner.from_data_dir(tmp_path / "other-key").mint(
            "service-of-alice", [Access("repository", "alice/app", ("pull",))])
        expired = TokenSigner.from_data_dir(tmp_path / "data").mint(
            "service-of-alice", [Access("repository", "alice/app", ("pull",))], ttl_s=60, now=time.time() - 120)
        for bad in (forged, expired, "not-a-token", pull[:-4] + "AAAA"):
            refused = _node_pull(r, "alice/app", bad)
            assert refused.status_code == 401 and "pull token is invalid or expired" in refused.json()["message"]


def test_a_reissued_token_expires_with_the_pull_token(tmp_path: Path) -> None:
    """Else each answer, shown again as a pull token, would extend the pull right forever."""
    with running_registry(tmp_path) as r:
        signer = TokenSigner.from_data_dir(tmp_path / "data")
        pull = signer.mint("service-of-alice", [Access("repository", "alice/app", ("pull",))], ttl_s=20)
        own = signer.verify(pull)
        with httpx.Client(timeout=30, trust_env=False) as http:
            got = http.get(f"{r.api_url}/api/v1/registry/token", auth=(PULL_USER, pull),
                           params={"service": "arkserve", "scope": "repository:alice/app:pull"})
        assert got.status_code == 200, got.text
        again = signer.verify(got.json()["token"])
        assert own is not None and again is not None and again.expires_at <= own.expires_at
        assert got.json()["expires_in"] <= 20
