"""Bodies of the image registry: repositories and their tags, visibility, push commands and storage quotas."""

from __future__ import annotations

from pydantic import BaseModel, Field

from arkserve.schemas.common import MAX_INT64, _In


class ImageTagOut(BaseModel):
    tag: str
    digest: str
    size: int  # compressed bytes: config + layers
    pushed_at: float | None
    image: str  # full reference to pull: <registry>/<repository>:<tag>


class ImageRepositoryOut(BaseModel):
    name: str  # <namespace>/<path>
    owner: str
    public: bool
    tags: list[ImageTagOut]
    size: int  # the tags' sizes summed (shared layers count once per tag)
    pull: str  # pull command of the newest tag


class ImageVisibility(_In):
    public: bool


class PushCommandsOut(BaseModel):
    registry: str
    username: str
    namespace: str
    login: str  # with the console password
    login_with_key: str  # with an access key: AK as user name, SK as password
    tag: str
    push: str
    commands: list[str]


class ImageQuotaOut(BaseModel):
    username: str
    used_bytes: int
    quota_bytes: int


class ImageQuotaIn(_In):
    quota_bytes: int | None = Field(ge=0, le=MAX_INT64,
                                    description="bytes; null: back to the default (registry.quota_gib)")
