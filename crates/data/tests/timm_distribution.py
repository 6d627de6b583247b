"""Samples of timm 1.0.15's training transform with SwinFace's arguments, for
augment_distribution.rs.

Usage: timm_distribution.py DIR N. Reads DIR/input.rgb (112x112 RGB8), writes
DIR/stats.txt (N lines of image statistics of create_transform's output, see stats()) and
DIR/erase.txt (N erased areas of RandomErasing(p=1, mode='pixel') on a 3x112x112 tensor).
"""
import random
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from timm.data import create_transform
from timm.data.random_erasing import RandomErasing

SIZE = 112
LEVELS = (np.arange(256, dtype=np.float32) / np.float32(255) - np.float32(0.5)) / np.float32(0.5)


def stats(x):
    """x: [3, 112, 112] float32 -> the statistics compared by the Rust test."""
    x = x.astype(np.float64)
    half = SIZE // 2
    k = np.clip(np.rint((x + 1.0) / 2.0 * 255.0), 0, 255).astype(np.int64)
    on_grid = LEVELS[k].astype(np.float64) == x
    return [
        x.mean(),
        x.std(),
        x[0, :, :half].mean() - x[0, :, half:].mean(),
        x[:, :half, :].mean() - x[:, half:, :].mean(),
        x[1].mean() - x[2].mean(),
        (x == float(LEVELS[128])).mean(),
        1.0 - on_grid.mean(),
    ]


def main():
    root, n = Path(sys.argv[1]), int(sys.argv[2])
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    img = Image.frombytes("RGB", (SIZE, SIZE), (root / "input.rgb").read_bytes())
    transform = create_transform(
        input_size=SIZE,
        is_training=True,
        color_jitter=0.4,
        auto_augment="rand-m9-mstd0.5-inc1",
        re_prob=0.25,
        re_mode="pixel",
        re_count=1,
        interpolation="bicubic",
        scale=(1.0, 1.0),
        ratio=(1.0, 1.0),
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
    )
    lines = []
    for _ in range(n):
        lines.append(" ".join(repr(float(v)) for v in stats(transform(img).numpy())))
    (root / "stats.txt").write_text("\n".join(lines) + "\n")

    erasing = RandomErasing(1.0, mode="pixel", max_count=1, device="cpu")
    areas = []
    for _ in range(n):
        t = torch.zeros(3, SIZE, SIZE)
        erasing(t)
        areas.append(str(int((t[0] != 0).sum())))
    (root / "erase.txt").write_text("\n".join(areas) + "\n")


if __name__ == "__main__":
    main()
