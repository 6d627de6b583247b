"""Reads the tagged JSON lines of scripts/bench.sh and prints medians and ratios ours / PyTorch."""
import json
import statistics
import sys

runs = [json.loads(line) for line in sys.stdin if line.startswith("{")]


def median(bench, impl, value):
    values = [value(r["result"]) for r in runs if r["bench"] == bench and r["result"]["impl"] == impl]
    return statistics.median(values) if values else None


def row(label, bench, value, unit, higher_is_better=True):
    ours, base = median(bench, "rust", value), median(bench, "pytorch", value)
    if ours is None or base is None:
        return
    ratio = ours / base if higher_is_better else base / ours
    print(f"{label:<34} ours {ours:9.2f}  pytorch {base:9.2f} {unit:<10} ours/pytorch {ratio:5.2f}x")


def forward_rate(r):
    (rate,) = r["images_per_s"].values()
    return rate


def data_rate(r):
    return statistics.median(r["reps_images_per_s"]) / r["threads"]


def rss(r):
    return r["peak_rss_mib"]


threads = {r["result"].get("threads") for r in runs}
print(f"{len(runs)} runs, torch threads {sorted(t for t in threads if t)}; speed ratios > 1 mean ours is faster,")
print("memory ratios > 1 mean ours uses less")
row("forward, full model, eval", "forward", forward_rate, "img/s")
row("train step, full model, 4 x 8", "train_full", lambda r: r["images_per_s"], "img/s")
row("train step, demo model (configs/demo.yaml batches)", "train_small", lambda r: r["images_per_s"], "img/s")
row("data: decode + augment, per core", "data", data_rate, "img/s/core")
row("peak RSS, forward", "forward", rss, "MiB", higher_is_better=False)
row("peak RSS, train full", "train_full", rss, "MiB", higher_is_better=False)
row("peak RSS, train demo", "train_small", rss, "MiB", higher_is_better=False)
