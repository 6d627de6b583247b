"""Reference outputs of timm 1.0.15's RandAugment ops and Pillow's resize, for
augment_pillow.rs.

Usage: pil_reference.py DIR. DIR/cases.txt has one case per line:
    INPUT WIDTH HEIGHT OP ARG OUTPUT
with INPUT and OUTPUT raw RGB8 files in DIR. OP names a timm op (NAME_TO_OP key) called as
RandAugment calls it (fillcolor 128 grey, resample as given by ARG for geometric ops), or
'Resize' (ARG = WIDTHxHEIGHT:FILTER) or 'Flip'.
"""
import sys
from pathlib import Path

from PIL import Image
from timm.data import auto_augment as aa

FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
}
FILL = (128, 128, 128)


def run(img, op, arg):
    if op == "Resize":
        size, filt = arg.split(":")
        w, h = (int(v) for v in size.split("x"))
        return img.resize((w, h), FILTERS[filt])
    if op == "Flip":
        return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    fn = aa.NAME_TO_OP[op]
    if op in ("AutoContrast", "Equalize", "Invert"):
        return fn(img)
    if op in ("Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel"):
        value, filt = arg.split(":")
        return fn(img, float(value), fillcolor=FILL, resample=FILTERS[filt])
    if op.startswith("Posterize") or op.startswith("Solarize") and op != "SolarizeAdd":
        return fn(img, int(arg))
    if op == "SolarizeAdd":
        return fn(img, int(arg))
    return fn(img, float(arg))


def main():
    root = Path(sys.argv[1])
    for line in (root / "cases.txt").read_text().splitlines():
        src, w, h, op, arg, dst = line.split()
        img = Image.frombytes("RGB", (int(w), int(h)), (root / src).read_bytes())
        out = run(img, op, arg)
        assert out.mode == "RGB", out.mode
        (root / dst).write_bytes(out.tobytes())


if __name__ == "__main__":
    main()
