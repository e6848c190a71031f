"""Bodies of the model market: models, their versions and files, and the card a publisher edits."""

from __future__ import annotations

from pydantic import BaseModel, Field

from arkserve.schemas.common import _In


class ModelFileOut(BaseModel):
    path: str
    size: int
    sha256: str


class ModelVersionOut(BaseModel):
    version: str
    digest: str = Field(description="sha256 over the manifest (the version's files and their SHA-256)")
    size: int
    file_count: int
    created_at: float
    files: list[ModelFileOut] | None = Field(default=None, description="the manifest (in a model's own page)")


class ModelOut(BaseModel):
    name: str
    owner: str = Field(description="the publisher")
    description: str = Field(description="Markdown")
    task: str
    framework: str
    license: str
    public: bool
    size: int = Field(description="bytes of the latest version")
    versions: list[ModelVersionOut]
    mounted_by: list[str] = Field(default_factory=list, description="services of yours mounting a version")
    created_at: float
    updated_at: float


class ModelCard(_In):
    description: str | None = Field(default=None, max_length=65536, description="Markdown")
    task: str | None = Field(default=None, max_length=64, description="e.g. image-classification")
    framework: str | None = Field(default=None, max_length=64, description="e.g. pytorch")
    license: str | None = Field(default=None, max_length=64, description="e.g. Apache-2.0")
    public: bool | None = Field(default=None, description="visible to every user (admins only)")


class ModelPublishDisk(ModelCard):
    disk_path: str = Field(min_length=1, max_length=4096, description="a folder of your network disk")
    nul_checked_elsewhere = frozenset({"disk_path"})  # a disk path's NUL: 400 BadPath, as every bad path
