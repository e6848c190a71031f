"""Draw five small JPEG test images with PIL (no download) into ``images/`` (or ``--out``).

They are flower-ish doodles (petals around a centre, in the colours of daisies, dandelions, roses,
sunflowers and tulips), deterministic, a couple of KB each: input for the walkthrough, not a benchmark.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from PIL import Image, ImageDraw

FLOWERS = {  # name: (petal colour, centre colour, background, petals)
    "daisy": ((245, 245, 240), (240, 200, 30), (60, 120, 50), 14),
    "dandelion": ((250, 215, 20), (230, 180, 10), (70, 140, 60), 28),
    "roses": ((200, 20, 40), (140, 10, 25), (40, 90, 40), 7),
    "sunflowers": ((255, 190, 0), (90, 50, 20), (90, 150, 220), 20),
    "tulips": ((235, 60, 120), (250, 200, 60), (110, 170, 80), 5),
}


def draw(petal: tuple, centre: tuple, background: tuple, petals: int, size: int = 160) -> Image.Image:
    img = Image.new("RGB", (size, size), background)
    d = ImageDraw.Draw(img)
    c, r = size / 2, size * 0.32
    for i in range(petals):
        a = 2 * math.pi * i / petals
        x, y = c + r * math.cos(a), c + r * math.sin(a)
        w = size * (0.5 / petals + 0.08)
        d.ellipse([x - w, y - w, x + w, y + w], fill=petal)
    d.ellipse([c - size * 0.14, c - size * 0.14, c + size * 0.14, c + size * 0.14], fill=centre)
    return img


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "images"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, spec in FLOWERS.items():
        path = out / f"{name}.jpg"
        draw(*spec).save(path, "JPEG", quality=80)
        print(path)


if __name__ == "__main__":
    main()
