"""Pull credentials for replicas: a token scoped to exactly the one repository a service runs, for the
Docker runtime to hand to dockerd (``registrytoken``), never a user's password or secret key.

The reconciler calls :meth:`RegistryPulls.token_for` while it builds a replica's spec. The service's owner
must still be allowed to pull the image (their own namespace, ``ark-public/``, a public repository, or
any as an admin): otherwise ``ImagePullDenied``, which ends the replica as ``failed/ImagePullDenied``.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection

from arkserve.errors import PermanentError
from arkserve.registry.names import in_registry
from arkserve.registry.policy import Requester, decide
from arkserve.registry.tokens import Access, TokenSigner
from arkserve.store import images as image_store


class RegistryPulls:
    def __init__(self, address: str, data_dir: Path, ttl_s: int = 300, listen: str = "") -> None:
        """``address``: the registry's name in image references; ``listen``: ``registry.host:registry.port``
        (an image naming the registry by either, or by any name of this machine with their port, is checked)."""
        self.address, self.data_dir, self.ttl_s, self.listen = address, Path(data_dir), ttl_s, listen
        self._signer: TokenSigner | None = None

    def token_for(self, conn: Connection, image: str, owner: str, owner_is_admin: bool) -> str:
        """A pull token for ``image`` when it lives in the platform registry, by whichever of its names
        (``localhost:PORT/bob/app`` is ``bob/app`` too); '' for any other image (the runtime pulls it anonymously)."""
        ref = in_registry(image, self.address, self.listen)
        if ref is None:
            return ""
        asked = Access("repository", ref.repository, ("pull",))

        def is_public(name: str) -> bool:
            row = image_store.find(conn, name)
            return row is not None and row.public

        decision = decide(Requester(owner, owner_is_admin), asked, is_public=is_public)
        if decision.granted is None:
            raise PermanentError(f"pulling {ref} refused: {decision.refusal}", code="ImagePullDenied")
        if self._signer is None:
            self._signer = TokenSigner.from_data_dir(self.data_dir)
        return self._signer.mint(f"service-of-{owner}", [decision.granted], ttl_s=self.ttl_s)
