"""Pull progress in words, from the JSON lines dockerd streams while it pulls an image.

``PullProgress.feed(line)`` takes each line (``{"id": layer, "status": ..., "progressDetail": {current,
total}}``) and ``summary()`` says "pulling 3 of 7 layers, 612 MB of 1.4 GB". Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_DONE = ("Pull complete", "Already exists")


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit in ("B", "kB") else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


@dataclass
class PullProgress:
    layers: set[str] = field(default_factory=set)
    done: set[str] = field(default_factory=set)
    current: dict[str, int] = field(default_factory=dict)
    total: dict[str, int] = field(default_factory=dict)

    def feed(self, line: dict[str, Any]) -> None:
        layer, status = str(line.get("id") or ""), str(line.get("status") or "")
        if not layer or " " in layer or status.startswith(("Pulling from", "Digest", "Status")):
            return  # a line about the image, not a layer
        self.layers.add(layer)
        detail = line.get("progressDetail") or {}
        if status == "Downloading" and detail.get("total"):
            self.current[layer], self.total[layer] = int(detail.get("current", 0)), int(detail["total"])
        elif status in ("Download complete", *_DONE) and layer in self.total:
            self.current[layer] = self.total[layer]
        if status in _DONE:
            self.done.add(layer)

    def summary(self) -> str:
        verb = "pulled" if self.layers and self.done == self.layers else "pulling"
        out = f"{verb} {len(self.done)} of {len(self.layers)} layers"
        if self.total:
            out += f", {_size(sum(self.current.values()))} of {_size(sum(self.total.values()))}"
        return out
