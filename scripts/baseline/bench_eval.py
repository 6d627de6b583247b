"""Verification-evaluation throughput of the PyTorch baseline, insightface's way: load_bin
(decode every image, keep it and its flip as uint8 tensors), test() (batches through the
backbone for both, embeddings summed and L2-normalised), evaluate() (10-fold accuracy, VAL).
Prints one JSON line in the shape of `swinface bench eval`.

Differences from insightface, none on the timed path's cost class: PIL decodes instead of
mxnet's imdecode, and VAL's threshold comes from np.interp instead of scipy's interp1d (scipy is
not in the venv; both are a few microseconds per fold).
"""
import argparse
import json
import pickle
import statistics
import time
import io

import numpy as np
import torch
from PIL import Image

from swinface_torch import Backbone

LFW_IMAGES = 12_000


def load_bin(path, image_size=112):
    with open(path, "rb") as f:
        bins, issame_list = pickle.load(f, encoding="bytes")
    data_list = [torch.zeros((len(issame_list) * 2, 3, image_size, image_size), dtype=torch.uint8) for _ in range(2)]
    for idx in range(len(issame_list) * 2):
        img = Image.open(io.BytesIO(bins[idx])).convert("RGB")
        if img.size != (image_size, image_size):
            img = img.resize((image_size, image_size), Image.BILINEAR)
        img = torch.from_numpy(np.asarray(img)).permute(2, 0, 1)
        data_list[0][idx][:] = img
        data_list[1][idx][:] = torch.flip(img, dims=[2])
    return data_list, issame_list


def calculate_accuracy(threshold, dist, actual_issame):
    predict_issame = np.less(dist, threshold)
    tp = np.sum(np.logical_and(predict_issame, actual_issame))
    fp = np.sum(np.logical_and(predict_issame, np.logical_not(actual_issame)))
    tn = np.sum(np.logical_and(np.logical_not(predict_issame), np.logical_not(actual_issame)))
    fn = np.sum(np.logical_and(np.logical_not(predict_issame), actual_issame))
    tpr = 0 if (tp + fn == 0) else float(tp) / float(tp + fn)
    fpr = 0 if (fp + tn == 0) else float(fp) / float(fp + tn)
    return tpr, fpr, float(tp + tn) / dist.size


def folds(n, k=10):
    sizes = np.full(k, n // k)
    sizes[: n % k] += 1
    start = 0
    for s in sizes:
        test = np.arange(start, start + s)
        yield np.setdiff1d(np.arange(n), test), test
        start += s


def calculate_roc(thresholds, dist, issame):
    tprs = np.zeros((10, len(thresholds)))
    fprs = np.zeros((10, len(thresholds)))
    accuracy = np.zeros(10)
    for k, (train, test) in enumerate(folds(len(dist))):
        acc_train = np.zeros(len(thresholds))
        for i, t in enumerate(thresholds):
            _, _, acc_train[i] = calculate_accuracy(t, dist[train], issame[train])
        best = np.argmax(acc_train)
        for i, t in enumerate(thresholds):
            tprs[k, i], fprs[k, i], _ = calculate_accuracy(t, dist[test], issame[test])
        _, _, accuracy[k] = calculate_accuracy(thresholds[best], dist[test], issame[test])
    return np.mean(tprs, 0), np.mean(fprs, 0), accuracy


def calculate_val(thresholds, dist, issame, far_target=1e-3):
    val = np.zeros(10)
    far = np.zeros(10)
    for k, (train, test) in enumerate(folds(len(dist))):
        far_train = np.zeros(len(thresholds))
        for i, t in enumerate(thresholds):
            p = np.less(dist[train], t)
            far_train[i] = np.sum(np.logical_and(p, ~issame[train])) / np.sum(~issame[train])
        threshold = np.interp(far_target, far_train, thresholds) if np.max(far_train) >= far_target else 0.0
        p = np.less(dist[test], threshold)
        val[k] = np.sum(np.logical_and(p, issame[test])) / np.sum(issame[test])
        far[k] = np.sum(np.logical_and(p, ~issame[test])) / np.sum(~issame[test])
    return np.mean(val), np.std(val), np.mean(far)


def evaluate(embeddings, issame):
    dist = np.sum(np.square(embeddings[0::2] - embeddings[1::2]), 1)
    _, _, accuracy = calculate_roc(np.arange(0, 4, 0.01), dist, issame)
    calculate_val(np.arange(0, 4, 0.001), dist, issame)
    return accuracy


def normalize(x):
    return x / np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]


@torch.no_grad()
def test(data_set, backbone, batch_size):
    data_list, issame_list = data_set
    embeddings_list = []
    for data in data_list:
        embeddings = None
        ba = 0
        while ba < data.shape[0]:
            bb = min(ba + batch_size, data.shape[0])
            count = bb - ba
            _data = data[max(bb - batch_size, 0): bb]
            img = ((_data / 255) - 0.5) / 0.5
            _, _, net_out = backbone(img)
            _embeddings = net_out.detach().cpu().numpy()
            if embeddings is None:
                embeddings = np.zeros((data.shape[0], _embeddings.shape[1]))
            embeddings[ba:bb, :] = _embeddings[(_embeddings.shape[0] - count):, :]
            ba = bb
        embeddings_list.append(embeddings)
    embeddings = normalize(embeddings_list[0] + embeddings_list[1])
    accuracy = evaluate(embeddings, np.asarray(issame_list))
    return np.mean(accuracy), embeddings.shape[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--model", default="tiny", choices=["tiny", "full"])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    torch.manual_seed(0)
    if args.model == "tiny":
        backbone = Backbone(dim=32, depths=(2, 2, 2, 2), heads=(1, 2, 4, 8), emb=128)
    else:
        backbone = Backbone()
    backbone.eval()
    times = []
    for i in range(args.reps + 1):
        t0 = time.perf_counter()
        data_set = load_bin(args.bin)
        accuracy, dim = test(data_set, backbone, args.batch)
        if i > 0:
            times.append(time.perf_counter() - t0)
    seconds = statistics.median(times)
    images = len(data_set[1]) * 2

    rng = np.random.default_rng(0x5EED)
    emb = normalize(rng.uniform(-1, 1, (LFW_IMAGES, dim)))
    issame = np.arange(LFW_IMAGES // 2) % 2 == 0
    t0 = time.perf_counter()
    evaluate(emb, issame)
    protocol_lfw = time.perf_counter() - t0
    t0 = time.perf_counter()
    evaluate(emb[:images], issame[: images // 2])
    protocol_here = time.perf_counter() - t0
    per_image = max(seconds - protocol_here, 0.0) / images
    print(json.dumps({
        "impl": "pytorch",
        "model": args.model,
        "threads": torch.get_num_threads(),
        "images": images,
        "seconds": seconds,
        "images_per_s": images / seconds,
        "protocol_seconds_lfw": protocol_lfw,
        "extrapolated_lfw_12000_s": per_image * LFW_IMAGES + protocol_lfw,
        "accuracy": float(accuracy),
    }))


if __name__ == "__main__":
    main()
