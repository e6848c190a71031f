"""Reading and deleting in the registry: its HTTP API with an internal token, plus its storage layout.

Repositories, tags, digests and sizes come from the registry's HTTP API (``/v2/_catalog``,
``/v2/<name>/tags/list``, ``/v2/<name>/manifests/<tag>``), with tokens the platform mints for
itself. Distribution 2.8 has no API for two things, which the filesystem layout under
``<storage>/docker/registry/v2`` answers: when a tag was pushed (its link file's time) and how
much storage a namespace holds (the blobs its repositories link, counted once). Removing one tag
that shares its manifest with another tag, and removing a repository from the catalogue, also
happen there; garbage collection (``maintenance``) then frees the unreferenced blobs.
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from arkserve.errors import NotFound, TemporaryError
from arkserve.registry.tokens import Access, TokenSigner

MANIFEST_TYPES = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json"])
ALL = ("pull", "push", "delete", "*")


@dataclass(frozen=True)
class Tag:
    name: str
    digest: str
    size: int  # compressed bytes: config + layers (an index: its manifests)
    pushed_at: float | None


class Catalogue:
    def __init__(self, base_url: str, signer: TokenSigner, storage: Path, timeout_s: float = 10.0) -> None:
        self.base_url, self.signer, self.v2 = base_url.rstrip("/"), signer, Path(storage) / "docker/registry/v2"
        self.http = httpx.Client(timeout=timeout_s, trust_env=False)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Catalogue:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, access: Access, **kw: Any) -> httpx.Response:
        token = self.signer.mint("arkserve", [access], ttl_s=60)
        headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
        try:
            return self.http.request(method, f"{self.base_url}{path}", headers=headers, **kw)
        except httpx.HTTPError as exc:
            raise TemporaryError(f"the image registry at {self.base_url} is not reachable: {exc}",
                                 code="RegistryUnavailable") from exc

    @staticmethod
    def _check(resp: httpx.Response, what: str) -> None:
        if resp.status_code == 404:
            raise NotFound(f"{what} not found in the registry", code="ImageNotFound")
        if resp.status_code >= 400:
            raise TemporaryError(f"the image registry answered {resp.status_code} for {what}: {resp.text[:300]}",
                                 code="RegistryUnavailable")

    def repositories(self) -> list[str]:
        out: list[str] = []
        path = "/v2/_catalog?n=1000"
        while path:
            resp = self._call("GET", path, Access("registry", "catalog", ("*",)))
            self._check(resp, "the catalogue")
            out += resp.json().get("repositories") or []
            link = resp.headers.get("link", "")
            path = link.split(";")[0].strip("<> ") if "rel=\"next\"" in link else ""
        return out

    def tag_names(self, repo: str) -> list[str]:
        resp = self._call("GET", f"/v2/{repo}/tags/list", Access("repository", repo, ("pull",)))
        if resp.status_code == 404:
            return []
        self._check(resp, repo)
        return sorted(resp.json().get("tags") or [])

    def manifest(self, repo: str, reference: str) -> tuple[str, int, dict[str, Any]]:
        """(digest, size, manifest) of ``repo:reference``."""
        resp = self._call("GET", f"/v2/{repo}/manifests/{reference}", Access("repository", repo, ("pull",)),
                          headers={"Accept": MANIFEST_TYPES})
        self._check(resp, f"{repo}:{reference}")
        body = resp.json()
        parts = body.get("layers") or body.get("manifests") or []
        size = int((body.get("config") or {}).get("size", 0)) + sum(int(p.get("size", 0)) for p in parts)
        return resp.headers.get("docker-content-digest", ""), size, body

    def pushed_at(self, repo: str, tag: str) -> float | None:
        link = self.v2 / "repositories" / repo / "_manifests/tags" / tag / "current/link"
        try:
            return link.stat().st_mtime
        except OSError:
            return None

    def tags(self, repo: str) -> list[Tag]:
        out = []
        for name in self.tag_names(repo):
            try:
                digest, size, _ = self.manifest(repo, name)
            except NotFound:  # deleted meanwhile
                continue
            out.append(Tag(name, digest, size, self.pushed_at(repo, name)))
        return out

    def delete_tag(self, repo: str, tag: str) -> str:
        """Remove ``repo:tag``; returns its digest. The manifest goes too unless another tag still names it."""
        digest, _, _ = self.manifest(repo, tag)
        others = [t for t in self.tag_names(repo)
                  if t != tag and self.manifest(repo, t)[0] == digest]  # public content address
        if others:  # Distribution 2.8 deletes manifests, not tags: drop only this tag's directory
            shutil.rmtree(self.v2 / "repositories" / repo / "_manifests/tags" / tag, ignore_errors=True)
            return digest
        resp = self._call("DELETE", f"/v2/{repo}/manifests/{digest}", Access("repository", repo, ALL))
        if resp.status_code != 404:
            self._check(resp, f"{repo}@{digest}")
        return digest

    def delete_repository(self, repo: str) -> None:
        """Every manifest of ``repo``, then the repository itself (it leaves the catalogue)."""
        for tag in self.tag_names(repo):
            with contextlib.suppress(NotFound):
                self.delete_tag(repo, tag)
        shutil.rmtree(self.v2 / "repositories" / repo, ignore_errors=True)

    def namespace_bytes(self, namespace: str) -> int:
        """Storage held by ``namespace``'s repositories: each blob they link, counted once."""
        seen: set[str] = set()
        total = 0
        root = self.v2 / "repositories" / namespace
        blobs = self.v2 / "blobs" / "sha256"
        for link in root.glob("**/_layers/sha256/*/link"):
            hexdigest = link.parent.name
            if hexdigest in seen:
                continue
            seen.add(hexdigest)
            try:
                total += (blobs / hexdigest[:2] / hexdigest / "data").stat().st_size
            except OSError:
                continue  # collected already
        return total

    def delete_manifest(self, repo: str, digest: str) -> None:
        """Remove the manifest ``repo@digest``; the registry untags every tag naming it. ImageNotFound when the
        repository holds no such manifest."""
        resp = self._call("DELETE", f"/v2/{repo}/manifests/{digest}", Access("repository", repo, ALL))
        self._check(resp, f"{repo}@{digest}")
