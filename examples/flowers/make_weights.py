"""The "make-weights" step: write a deterministic DEMO checkpoint ``flower-model.pth``.

The weights are a freshly initialised ResNet34 (``torch.manual_seed(0)``): the same file every time,
so the walkthrough runs without the flower photos, but the labels it predicts are ARBITRARY. The
checkpoint says so in ``metadata["demo"]``/``metadata["note"]``, and infer.py logs it. For real
predictions, train on the photos with ``train.py`` (same file name, same format).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from model import NUM_CLASSES, resnet34

NOTE = "DEMO WEIGHTS: randomly initialised (seed 0), not trained; predicted labels are arbitrary"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "flower-model.pth"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    net = resnet34(num_classes=NUM_CLASSES).eval()
    meta = {"demo": True, "note": NOTE, "seed": args.seed, "arch": "resnet34"}
    torch.save({"state_dict": net.state_dict(), "metadata": meta}, args.out)
    print(f"wrote {args.out} ({NOTE})")


if __name__ == "__main__":
    main()
