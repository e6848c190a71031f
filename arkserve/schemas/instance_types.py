"""Bodies of instance types: the CPU, memory and GPU sizes (whole GPUs or a share of one) a service runs on,
and their price."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from arkserve.schemas.common import MAX_INT32, _In


class InstanceTypeIn(_In):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{0,63}$")
    cpus: float = Field(gt=0, le=1024)
    memory_mb: int = Field(gt=0, le=MAX_INT32)
    gpus: int = Field(default=0, ge=0, le=64)
    gpu_model: str = Field(default="", max_length=64)
    price_per_hour: float = Field(default=0.0, ge=0, le=1_000_000, allow_inf_nan=False,
                                  description="per replica-hour; at most 1 000 000 (the ledger counts micro-units "
                                              "in 64 bits)")
    billing: Literal["payg", "reserved"] = "payg"
    description: str = Field(default="", max_length=200)
    gpu_fraction: float = Field(default=0.0, ge=0, lt=1, description=(
        "A share of one GPU's memory (e.g. 0.5), with gpus = 0: replicas are packed onto one GPU by memory "
        "(packing, not isolation; docs/capacity.md)"))

    @field_validator("gpu_fraction")
    @classmethod
    def _fraction_or_whole(cls, v: float, info: ValidationInfo) -> float:
        if v > 0 and info.data.get("gpus"):
            raise ValueError("an instance type has whole GPUs (gpus) or a share of one (gpu_fraction), not both")
        return v


class InstanceTypeOut(InstanceTypeIn):
    model_config = ConfigDict(extra="ignore")
