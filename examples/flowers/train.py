"""Fine-tune the ResNet34 on your own photos (ImageFolder layout: ``DATA/<class name>/*.jpg``).

    python3 train.py ~/flower_photos --epochs 3 --batch-size 16 --lr 1e-4 --out flower-model.pth

Holds out ``--val-split`` of the images for validation, keeps the best epoch, and writes the checkpoint
(``{"state_dict", "metadata"}``, ``metadata["demo"] = False``) and ``class_indices.json`` next to it.
``--init`` starts from a torchvision ``resnet34`` ImageNet state_dict (its ``fc`` is replaced), which
trains far faster than from scratch.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch import nn
from torchvision import datasets

from model import resnet34
from preprocess import PREPROCESS, TRAIN_TF


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", help="folder with one sub-folder of images per class")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--out", default="flower-model.pth")
    ap.add_argument("--val-split", type=float, default=0.1)
    ap.add_argument("--init", default="", help="torchvision resnet34 state_dict to start from")
    ap.add_argument("--workers", type=int, default=2)
    return ap.parse_args()


def evaluate(net: nn.Module, loader: torch.utils.data.DataLoader) -> float:
    net.eval()
    right = total = 0
    with torch.no_grad():
        for x, y in loader:
            right += int((net(x).argmax(1) == y).sum())
            total += len(y)
    return right / max(total, 1)


def main() -> None:
    args = parse_args()
    torch.manual_seed(0)
    train_set = datasets.ImageFolder(args.data, transform=TRAIN_TF)
    val_set = datasets.ImageFolder(args.data, transform=PREPROCESS)
    order = torch.randperm(len(train_set)).tolist()
    n_val = int(len(order) * args.val_split) if len(order) > 1 else 0
    val_idx, train_idx = order[:n_val], order[n_val:]
    load = dict(batch_size=args.batch_size, num_workers=args.workers)
    train_loader = torch.utils.data.DataLoader(torch.utils.data.Subset(train_set, train_idx), shuffle=True, **load)
    val_loader = torch.utils.data.DataLoader(torch.utils.data.Subset(val_set, val_idx), **load)
    classes = {str(i): name for name, i in train_set.class_to_idx.items()}

    net = resnet34(num_classes=len(classes))
    if args.init:
        state = torch.load(args.init, map_location="cpu")
        net.load_state_dict({k: v for k, v in state.items() if not k.startswith("fc.")}, strict=False)
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()
    best = -1.0
    out = Path(args.out)
    for epoch in range(1, args.epochs + 1):
        net.train()
        t0, running = time.monotonic(), 0.0
        for x, y in train_loader:
            optimizer.zero_grad()
            loss = loss_fn(net(x), y)
            loss.backward()
            optimizer.step()
            running += float(loss) * len(y)
        acc = evaluate(net, val_loader) if n_val else 0.0
        print(f"epoch {epoch}: loss {running / max(len(train_idx), 1):.3f}  val_acc {acc:.3f}  "
              f"({time.monotonic() - t0:.0f}s)", flush=True)
        if acc > best:
            best = acc
            # str/int/bool only: torch 1.13's weights_only loader (what infer.py uses) rejects floats
            meta = {"demo": False, "arch": "resnet34", "epochs": epoch, "val_acc": f"{acc:.4f}", "data": str(args.data)}
            torch.save({"state_dict": net.state_dict(), "metadata": meta}, out)
    (out.parent / "class_indices.json").write_text(json.dumps(classes, indent=1) + "\n")
    print(f"wrote {out} (best val_acc {best:.3f}) and {out.parent / 'class_indices.json'}")


if __name__ == "__main__":
    main()
