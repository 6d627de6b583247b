"""Reference for cv2_parity.rs: runs OpenCV on raw RGB8 images listed in a manifest.

Usage: cv2_reference.py DIR. DIR/manifest.txt has one case per line:
  resize NAME W H DW DH          -> DIR/NAME.cv2 = cv2.resize(img, (DW, DH)) (INTER_LINEAR)
  align NAME W H x1 y1 ... x5 y5 -> DIR/NAME.cv2 = cv2.warpAffine(img, M, (112, 112),
                                    borderValue=0.0), M = Umeyama similarity (numpy, float64)
                                    of the float32 landmarks onto the float32 ArcFace template
  decode NAME FILE               -> DIR/NAME.cv2 = cv2.imread(FILE) as RGB, DIR/NAME.shape
Input pixels are in DIR/NAME.rgb (row-major RGB8).
"""
import os
import sys

import cv2
import numpy as np

ARCFACE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                    [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float32)


def umeyama(src, dst):
    """skimage's _umeyama(src, dst, estimate_scale=True), written out with numpy."""
    src = src.astype(np.float64)
    dst = dst.astype(np.float64)
    num, dim = src.shape
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_demean, dst_demean = src - src_mean, dst - dst_mean
    a = dst_demean.T @ src_demean / num
    d = np.ones((dim,))
    if np.linalg.det(a) < 0:
        d[dim - 1] = -1
    t = np.eye(dim + 1)
    u, s, v = np.linalg.svd(a)
    t[:dim, :dim] = u @ np.diag(d) @ v
    scale = 1.0 / src_demean.var(axis=0).sum() * (s @ d)
    t[:dim, dim] = dst_mean - scale * (t[:dim, :dim] @ src_mean.T)
    t[:dim, :dim] *= scale
    return t[:2]


def main(root):
    with open(os.path.join(root, "manifest.txt")) as f:
        lines = [line.split() for line in f if line.strip()]
    for kind, name, *rest in lines:
        out = os.path.join(root, name + ".cv2")
        if kind == "decode":
            img = cv2.imread(rest[0], cv2.IMREAD_COLOR)
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
            with open(os.path.join(root, name + ".shape"), "w") as f:
                f.write(f"{img.shape[1]} {img.shape[0]}\n")
            img.tofile(out)
            continue
        w, h = int(rest[0]), int(rest[1])
        img = np.fromfile(os.path.join(root, name + ".rgb"), dtype=np.uint8).reshape(h, w, 3)
        if kind == "resize":
            dw, dh = int(rest[2]), int(rest[3])
            res = cv2.resize(img, (dw, dh))
        elif kind == "align":
            lmk = np.array([float(v) for v in rest[2:12]], dtype=np.float32).reshape(5, 2)
            m = umeyama(lmk, ARCFACE)
            res = cv2.warpAffine(img, m, (112, 112), borderValue=0.0)
        else:
            raise SystemExit(f"unknown case kind {kind}")
        np.ascontiguousarray(res).tofile(out)


if __name__ == "__main__":
    main(sys.argv[1])
