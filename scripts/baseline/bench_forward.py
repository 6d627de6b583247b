"""Forward-pass throughput of the PyTorch eager SwinFace baseline; prints one JSON line."""
import argparse
import json
import resource
import statistics
import time

import torch

from swinface_torch import SwinFace


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 32])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.manual_seed(0)
    dev = torch.device(args.device)
    model = SwinFace().to(dev).eval()
    result = {"impl": "pytorch", "threads": torch.get_num_threads(), "images_per_s": {}}
    with torch.inference_mode():
        for b in args.batch:
            x = torch.randn(b, 3, 112, 112, device=dev)
            times = []
            for i in range(args.warmup + args.reps):
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                model(x)
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                if i >= args.warmup:
                    times.append(time.perf_counter() - t0)
            result["images_per_s"][str(b)] = b / statistics.median(times)
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


if __name__ == "__main__":
    main()
