"""Multi-task train-step throughput of the PyTorch eager SwinFace baseline; prints one JSON line.

The step is the official train.py's: one batch per stream (recognition, age-gender, CelebA,
expression) concatenated into one forward pass; Partial FC (v2, one rank) with the CosFace
margin on the recognition slice; the age loss, the 40 attribute losses (Gender from the
age-gender and CelebA streams) and the expression loss on their slices; the weighted sum;
backward (through GradScaler in fp16); the backbone's gradient norm clipped at 5;
torch.optim.AdamW (backbone at lr x backbone_lr_scale, the rest at lr, Partial FC's centres
in their own group) and the scheduler step; `loss.item()` once per step, as the official log
line reads it.

`--spec` takes the JSON line of `swinface bench train` (its model, batches, Partial FC and
optimizer settings), so that both sides train exactly the same configuration.
"""
import argparse
import json
import math
import resource
import statistics
import time

import torch
import torch.nn.functional as F

import swinface_torch
from swinface_torch import SwinFace, TASK_NAMES

GENDER = TASK_NAMES.index("Gender")
ATTRIBUTES = TASK_NAMES[1:41]


class PartialFC(torch.nn.Module):
    """insightface's PartialFC_V2 on one rank, with CombinedMarginLoss (s = 64)."""

    def __init__(self, embedding_size, num_classes, sample_rate, margins, amp_dtype):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.normal(0, 0.01, (num_classes, embedding_size)))
        # amp_dtype: the logits' autocast dtype, None in fp32.
        self.num_classes, self.sample_rate, self.amp_dtype = num_classes, sample_rate, amp_dtype
        self.m1, self.m2, self.m3 = margins
        self.s = 64.0

    def forward(self, embeddings, labels):
        weight = self.weight
        num_sample = int(self.sample_rate * self.num_classes)
        if self.sample_rate < 1:
            with torch.no_grad():
                positive = torch.unique(labels, sorted=True)
                if num_sample - positive.size(0) >= 0:
                    perm = torch.rand(size=[self.num_classes], device=labels.device)
                    perm[positive] = 2.0
                    index = torch.topk(perm, k=num_sample)[1].sort()[0]
                else:
                    index = positive
                labels = torch.searchsorted(index, labels)
            weight = self.weight[index]
        with torch.autocast(embeddings.device.type, dtype=self.amp_dtype or torch.float16,
                            enabled=self.amp_dtype is not None):
            logits = F.linear(F.normalize(embeddings), F.normalize(weight))
        logits = logits.float().clamp(-1, 1)
        rows = torch.arange(labels.size(0), device=labels.device)
        target = logits[rows, labels]
        if self.m1 == 1.0 and self.m2 == 0.0:
            final = target - self.m3
        else:
            theta = torch.arccos(target)
            final = torch.cos(theta * self.m1 + self.m2) - self.m3
        logits[rows, labels] = final
        return F.cross_entropy(logits * self.s, labels)


def age_loss(pred, label, step, total_step, sigma=3.0):
    lam = step / total_step
    sq = (pred.float() - label) ** 2
    return ((1 - lam) / 2 * sq + lam * (1 - torch.exp(-sq / (2 * sigma ** 2)))).mean()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--spec", required=True, help="the JSON line of `swinface bench train`")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--amp", default=None, choices=["fp32", "fp16", "bf16"],
                    help="precision (default: the spec's); fp16 is fp32 off the GPU, as ours")
    ap.add_argument("--flops", action="store_true", help="count one step's FLOPs (FlopCounterMode)")
    args = ap.parse_args()
    spec = json.loads(args.spec)
    dev = torch.device(args.device)
    amp = args.amp or spec.get("amp", "fp32")
    if dev.type != "cuda" and amp == "fp16":
        amp = "fp32"
    if dev.type == "cpu" and amp == "bf16":
        # Ours runs the same regions under CPU autocast (crates/model/tests/autocast.rs
        # patches the replica the same way).
        swinface_torch.autocast = lambda enabled, dtype: torch.autocast(
            "cpu", dtype=dtype, enabled=enabled)
    amp_dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    torch.manual_seed(0)
    model = SwinFace(amp_dtype=amp_dtype, spec=spec["model"]).to(dev).train()
    model.set_amp(amp != "fp32")
    r, a, c, e = spec["batches"]
    pfc = PartialFC(spec["model"]["embedding_size"], spec["num_classes"], spec["sample_rate"],
                    spec["margin_list"], None if amp == "fp32" else amp_dtype).to(dev)
    lr, wd = spec["lr"], spec["weight_decay"]
    backbone = list(model.backbone.parameters())
    heads = [p for n, p in model.named_parameters() if not n.startswith("backbone.")]
    opt = torch.optim.AdamW([
        {"params": backbone, "lr": lr * spec["backbone_lr_scale"]},
        {"params": heads},
        {"params": pfc.parameters()},
    ], lr=lr, weight_decay=wd)
    total_step, warmup = 80_000, 8_000

    def cosine(step):
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total_step - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, cosine)
    scaler = torch.amp.GradScaler("cuda", growth_interval=100, enabled=amp == "fp16")
    weights = spec["analysis_loss_weights"]

    g = torch.Generator().manual_seed(1)
    n = r + a + c + e
    size = spec["model"]["img_size"]
    images = torch.randn(n, 3, size, size, generator=g).to(dev)
    identities = torch.randint(0, spec["num_classes"], (r,), generator=g).to(dev)
    ages = (torch.rand(a, 1, generator=g) * 100).to(dev)
    genders = torch.randint(0, 2, (a,), generator=g).to(dev)
    attributes = torch.randint(0, 2, (c, 40), generator=g).to(dev)
    expressions = torch.randint(0, 7, (e,), generator=g).to(dev)
    both_genders = torch.cat([genders, attributes[:, GENDER - 1]])

    def step(i):
        out = model(images)
        loss = pfc(out["Recognition"][:r], identities) * spec["recognition_loss_weight"]
        loss = loss + weights[0] * age_loss(out["Age"][r:r + a], ages, i, total_step)
        for k, name in enumerate(ATTRIBUTES):
            if k == GENDER - 1:
                part = F.cross_entropy(out[name][r:r + a + c].float(), both_genders)
            else:
                part = F.cross_entropy(out[name][r + a:r + a + c].float(), attributes[:, k])
            loss = loss + weights[1 + k] * part
        loss = loss + weights[41] * F.cross_entropy(out["Expression"][r + a + c:].float(), expressions)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(backbone, 5)
        scaler.step(opt)
        scaler.update()
        scheduler.step()
        opt.zero_grad()
        return loss.item()

    result = {"impl": "pytorch", "device": dev.type, "amp": amp, "threads": torch.get_num_threads(),
              "batch": n}
    if args.flops:
        from torch.utils.flop_counter import FlopCounterMode
        counter = FlopCounterMode(display=False)
        with counter:
            step(0)
        result["flops_per_step"] = counter.get_total_flops()
    times = []
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for i in range(args.warmup + args.reps):
        t0 = time.perf_counter()
        step(i)  # .item() waits for the device
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    result["step_s"] = statistics.median(times)
    result["images_per_s"] = n / result["step_s"]
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if dev.type == "cuda":
        result["peak_allocated_mib"] = torch.cuda.max_memory_allocated() / 2 ** 20
        result["peak_reserved_mib"] = torch.cuda.max_memory_reserved() / 2 ** 20
        free, total = torch.cuda.mem_get_info()
        result["device_used_mib"] = (total - free) / 2 ** 20
    print(json.dumps(result))


if __name__ == "__main__":
    main()
