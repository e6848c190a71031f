"""Bodies of the network disk (``/api/v1/disk``): listings, usage and quota, moves and resumable uploads."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from arkserve.schemas.common import MAX_INT64, _In


class DiskEntryOut(BaseModel):
    path: str  # relative to the root of the disk ("" is the root)
    name: str
    type: Literal["file", "folder", "link", "other"]
    size: int  # bytes (files; 0 otherwise)
    modified: float


class DiskListingOut(BaseModel):
    path: str
    entries: list[DiskEntryOut]


class DiskUsageOut(BaseModel):
    username: str
    used: int  # bytes stored
    reserved: int  # bytes reserved by uploads in flight
    limit: int  # the quota, bytes


class DiskQuotaIn(_In):
    limit_bytes: int | None = Field(ge=0, le=MAX_INT64, description="bytes; null: back to the default (disk.quota_gib)")


class DiskPathIn(_In):
    path: str = Field(description="relative to the root of your disk, e.g. datasets/flowers")
    nul_checked_elsewhere = frozenset({"path"})  # a disk path's NUL: 400 BadPath, as every bad path


class DiskMoveIn(_In):
    src: str
    dst: str
    overwrite: bool = False
    nul_checked_elsewhere = frozenset({"src", "dst"})  # a disk path's NUL: 400 BadPath, as every bad path


class DiskUploadIn(_In):
    path: str
    nul_checked_elsewhere = frozenset({"path"})  # a disk path's NUL: 400 BadPath, as every bad path
    size: int = Field(ge=0, le=MAX_INT64,
                      description="bytes the finished file will have (checked against the quota now)")
    overwrite: bool = False


class DiskUploadOut(BaseModel):
    id: str
    path: str
    size: int
    offset: int  # bytes stored so far: continue from here
    overwrite: bool
    created_at: float
    expires_at: float
    complete: bool = False  # the file is in place and the session has ended
    entry: DiskEntryOut | None = None
