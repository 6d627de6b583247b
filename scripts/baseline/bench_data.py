"""PyTorch baseline of `swinface bench data`: a torch DataLoader over 112x112 JPEG files,
PIL decoding and timm's training transform with SwinFace's official arguments, with
num_workers worker processes. Prints one JSON line (same fields as the Rust benchmark).

The clock starts at the first batch (worker start-up excluded) and stops at the last.
"""
import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from PIL import Image
from timm.data import auto_augment, create_transform


def posterize_or_black(original):
    """The official Pillow gave a black image for 0 bits; some Pillow versions raise."""

    def posterize(img, bits_to_keep, **kwargs):
        try:
            return original(img, bits_to_keep, **kwargs)
        except (ValueError, OverflowError):
            return Image.new(img.mode, img.size)

    return posterize


for name in ("Posterize", "PosterizeIncreasing", "PosterizeOriginal"):
    auto_augment.NAME_TO_OP[name] = posterize_or_black(auto_augment.NAME_TO_OP[name])


class JpegFiles(torch.utils.data.Dataset):
    def __init__(self, paths, transform):
        self.paths = paths
        self.transform = transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        img = Image.open(self.paths[index]).convert("RGB")
        return self.transform(img), 0


def timed_epoch(loader):
    it = iter(loader)
    next(it)
    start = time.perf_counter()
    images = 0
    for x, _ in it:
        images += x.shape[0]
    return images, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True, help="folder of JPEGs (swinface bench data --prepare-only)")
    parser.add_argument("--threads", type=int, default=1, help="DataLoader worker processes")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()

    paths = sorted(str(p) for p in Path(args.dir).glob("*.jpg"))
    transform = create_transform(
        input_size=112,
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
    loader = torch.utils.data.DataLoader(
        JpegFiles(paths, transform),
        batch_size=args.batch,
        shuffle=True,
        num_workers=args.threads,
        drop_last=True,
        persistent_workers=True,
    )
    timed_epoch(loader)  # warms the page cache and starts the workers
    rates = []
    for _ in range(args.reps):
        images, seconds = timed_epoch(loader)
        rates.append(images / seconds)
    per_s = statistics.median(rates)
    print(
        json.dumps(
            {
                "impl": "pytorch",
                "threads": args.threads,
                "batch": args.batch,
                "images": len(paths),
                "images_per_s": per_s,
                "images_per_s_per_core": per_s / args.threads,
                "reps_images_per_s": rates,
            }
        )
    )


if __name__ == "__main__":
    main()
