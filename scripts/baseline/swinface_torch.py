"""SwinFace in plain PyTorch eager: the baseline our benchmarks compare against.

Written for this project (same architecture and state-dict keys as the official model, checked
against tests/fixtures/parity by `python scripts/baseline/swinface_torch.py --check`).
The autocast regions follow the official code: qkv, output projection and norm2+MLP may run in
half precision, the attention core always in fp32.
"""
import argparse
import math
import sys
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

TASK_NAMES = [
    "Age", "Attractive", "Blurry", "Chubby", "Heavy Makeup", "Gender", "Oval Face", "Pale Skin",
    "Smiling", "Young", "Bald", "Bangs", "Black Hair", "Blond Hair", "Brown Hair", "Gray Hair",
    "Receding Hairline", "Straight Hair", "Wavy Hair", "Wearing Hat", "Arched Eyebrows",
    "Bags Under Eyes", "Bushy Eyebrows", "Eyeglasses", "Narrow Eyes", "Big Nose", "Pointy Nose",
    "High Cheekbones", "Rosy Cheeks", "Wearing Earrings", "Sideburns", "Five O'Clock Shadow",
    "Big Lips", "Mouth Slightly Open", "Mustache", "Wearing Lipstick", "No Beard", "Double Chin",
    "Goatee", "Wearing Necklace", "Wearing Necktie", "Expression", "Recognition",
]
# Heads in state-dict order (branch by branch) -> index into TASK_NAMES.
HEAD_ORDER = [
    ["Gender"], ["Age", "Young"], ["Expression", "Smiling"],
    ["Attractive", "Blurry", "Chubby", "Heavy Makeup", "Oval Face", "Pale Skin"],
    ["Bald", "Bangs", "Black Hair", "Blond Hair", "Brown Hair", "Gray Hair", "Receding Hairline",
     "Straight Hair", "Wavy Hair", "Wearing Hat"],
    ["Arched Eyebrows", "Bags Under Eyes", "Bushy Eyebrows", "Eyeglasses", "Narrow Eyes"],
    ["Big Nose", "Pointy Nose"], ["High Cheekbones", "Rosy Cheeks", "Wearing Earrings", "Sideburns"],
    ["Five O'Clock Shadow", "Big Lips", "Mouth Slightly Open", "Mustache", "Wearing Lipstick",
     "No Beard"], ["Double Chin", "Goatee"], ["Wearing Necklace", "Wearing Necktie"],
]
HEAD_SIZE = {"Age": 1, "Expression": 7}


def autocast(enabled, dtype):
    return torch.autocast("cuda", dtype=dtype, enabled=enabled and torch.cuda.is_available())


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class WindowAttention(nn.Module):
    def __init__(self, dim, window, heads, amp_dtype):
        super().__init__()
        self.heads, self.window, self.amp_dtype = heads, window, amp_dtype
        self.scale = (dim // heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
        self.register_buffer("relative_position_index", rel[..., 0] * (2 * window - 1) + rel[..., 1])
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.amp = False

    def forward(self, x, mask):
        b, n, c = x.shape
        with autocast(self.amp, self.amp_dtype):
            qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        with autocast(False, self.amp_dtype):
            q, k, v = qkv[0].float(), qkv[1].float(), qkv[2].float()
            attn = (q * self.scale) @ k.transpose(-2, -1)
            bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
            attn = attn + bias.view(n, n, -1).permute(2, 0, 1).unsqueeze(0)
            if mask is not None:
                nw = mask.shape[0]
                attn = attn.view(b // nw, nw, self.heads, n, n) + mask.unsqueeze(1).unsqueeze(0)
                attn = attn.view(-1, self.heads, n, n)
            x = (attn.softmax(-1) @ v).transpose(1, 2).reshape(b, n, c)
        with autocast(self.amp, self.amp_dtype):
            return self.proj(x)


def partition(x, w):
    b, h, wd, c = x.shape
    return x.view(b, h // w, w, wd // w, w, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, w * w, c)


def unpartition(x, w, h, wd):
    b = x.shape[0] // ((h // w) * (wd // w))
    return x.view(b, h // w, wd // w, w, w, -1).permute(0, 1, 3, 2, 4, 5).reshape(b, h, wd, -1)


class Block(nn.Module):
    def __init__(self, dim, res, heads, window, shift, drop_path, amp_dtype):
        super().__init__()
        if res <= window:
            window, shift = res, 0
        self.res, self.window, self.shift, self.drop_path, self.amp_dtype = res, window, shift, drop_path, amp_dtype
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window, heads, amp_dtype)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, 4 * dim)
        mask = None
        if shift > 0:
            img = torch.zeros(1, res, res, 1)
            cuts = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
            for i, (hs, ws) in enumerate((h, w) for h in cuts for w in cuts):
                img[:, hs, ws, :] = i
            m = partition(img, window).squeeze(-1)
            mask = (m.unsqueeze(1) - m.unsqueeze(2)) != 0
            mask = torch.zeros(mask.shape).masked_fill(mask, -100.0)
        self.register_buffer("attn_mask", mask)

    def dp(self, x):
        if not self.training or self.drop_path == 0.0:
            return x
        keep = 1 - self.drop_path
        return x * x.new_empty((x.shape[0], 1, 1)).bernoulli_(keep) / keep

    def forward(self, x):
        b, l, c = x.shape
        h = self.res
        y = self.norm1(x).view(b, h, h, c)
        if self.shift:
            y = torch.roll(y, (-self.shift, -self.shift), (1, 2))
        y = unpartition(self.attn(partition(y, self.window), self.attn_mask), self.window, h, h)
        if self.shift:
            y = torch.roll(y, (self.shift, self.shift), (1, 2))
        x = x + self.dp(y.reshape(b, l, c))
        with autocast(self.attn.amp, self.amp_dtype):
            return x + self.dp(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    def __init__(self, dim, res):
        super().__init__()
        self.res = res
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x):
        b, _, c = x.shape
        x = x.view(b, self.res, self.res, c)
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x.view(b, -1, 4 * c)))


class Stage(nn.Module):
    def __init__(self, dim, res, depth, heads, window, dprs, last, amp_dtype):
        super().__init__()
        self.blocks = nn.ModuleList(
            Block(dim, res, heads, window, 0 if i % 2 == 0 else window // 2, dprs[i], amp_dtype) for i in range(depth))
        self.downsample = None if last else PatchMerging(dim, res)

    def forward(self, x):
        for blk in self.blocks:
            x = blk(x)
        return x if self.downsample is None else self.downsample(x)


class PatchEmbed(nn.Module):
    def __init__(self, patch, dim):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, patch, patch)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))


class Backbone(nn.Module):
    def __init__(self, img=112, patch=2, dim=96, depths=(2, 2, 6, 2), heads=(3, 6, 12, 24), window=7,
                 drop_path=0.1, emb=512, amp_dtype=torch.float16):
        super().__init__()
        self.patch_embed = PatchEmbed(patch, dim)
        dpr = [v.item() for v in torch.linspace(0, drop_path, sum(depths))]
        res = img // patch
        self.layers = nn.ModuleList()
        for i, d in enumerate(depths):
            self.layers.append(Stage(dim * 2 ** i, res // 2 ** i, d, heads[i], window,
                                     dpr[sum(depths[:i]):sum(depths[:i + 1])], i == len(depths) - 1, amp_dtype))
        nf = dim * 2 ** (len(depths) - 1)
        self.final_res = res // 2 ** (len(depths) - 1)
        self.norm = nn.LayerNorm(nf)
        self.head = nn.Linear(nf, emb)
        self.feature = nn.Sequential(nn.Linear(nf, nf, bias=False), nn.BatchNorm1d(nf, eps=2e-5),
                                     nn.Linear(nf, emb, bias=False), nn.BatchNorm1d(emb, eps=2e-5))

    def forward(self, x):
        x = self.patch_embed(x)
        local = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                b, l, c = x.shape
                r = int(math.isqrt(l))
                t = x.transpose(1, 2).reshape(b, c, r, r)
                k = r // self.final_res
                local.append(F.avg_pool2d(t, k) if k > 1 else t)
        b, l, c = x.shape
        glob = x.transpose(1, 2).reshape(b, c, self.final_res, self.final_res)
        emb = self.feature(self.norm(x).mean(1))
        return torch.cat(local, 1), glob, emb


def proportional_split(total, weights):
    """`total` shared in proportion to `weights`, largest remainder first (as ours)."""
    s = sum(weights)
    parts = [total * w // s for w in weights]
    order = sorted(range(len(weights)), key=lambda i: -(total * weights[i] % s))
    for i in order[: total - sum(parts)]:
        parts[i] += 1
    return parts


class SplitConv(nn.Module):
    def __init__(self, ins=(192, 384, 768, 768), outs=(47, 93, 186, 186)):
        super().__init__()
        self.cuts = [sum(ins[:i]) for i in range(len(ins) + 1)]
        self.convs = nn.ModuleList(nn.Conv2d(i, o, 3, 1, 1, bias=False) for i, o in zip(ins, outs))

    def forward(self, x):
        return torch.cat([c(x[:, self.cuts[j]:self.cuts[j + 1]]) for j, c in enumerate(self.convs)], 1)


class ChannelGate(nn.Module):
    def __init__(self, c, r=16):
        super().__init__()
        self.mlp = nn.Sequential(nn.Flatten(), nn.Linear(c, c // r), nn.ReLU(), nn.Linear(c // r, c))

    def forward(self, x):
        s = self.mlp(F.adaptive_avg_pool2d(x, 1)) + self.mlp(F.adaptive_max_pool2d(x, 1))
        return x * torch.sigmoid(s)[:, :, None, None]


class FamBranch(nn.Module):
    def __init__(self, ins=(192, 384, 768, 768), feat=512):
        super().__init__()
        self.conv = SplitConv(ins, proportional_split(feat, ins))
        self.channel_attention = ChannelGate(feat)
        self.norm = nn.BatchNorm1d(feat, eps=2e-5)

    def forward(self, x):
        x = F.relu(self.channel_attention(self.conv(x)))
        return self.norm(F.adaptive_max_pool2d(x, 1).flatten(1))


class Fam(nn.Module):
    def __init__(self, ins=(192, 384, 768, 768), feat=512):
        super().__init__()
        self.nets = nn.ModuleList(FamBranch(ins, feat) for _ in range(11))

    def forward(self, x):
        return torch.stack([n(x) for n in self.nets])


class Subnet(nn.Module):
    def __init__(self, d=512, drop=0.5):
        super().__init__()
        self.feature = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Dropout(drop),
                                     nn.Linear(d, d), nn.ReLU(), nn.Dropout(drop))

    def forward(self, x):
        return self.feature(x)


class Tss(nn.Module):
    def __init__(self, d=512, drop=0.5):
        super().__init__()
        self.nets = nn.ModuleList(Subnet(d, drop) for _ in range(11))

    def forward(self, x):
        return torch.stack([n(x[i]) for i, n in enumerate(self.nets)])


class Om(nn.Module):
    def __init__(self, d=512):
        super().__init__()
        self.output_fcs = nn.ModuleList(nn.Linear(d, HEAD_SIZE.get(n, 2)) for names in HEAD_ORDER for n in names)

    def forward(self, x, emb):
        out, k = {}, 0
        for i, names in enumerate(HEAD_ORDER):
            for n in names:
                out[n] = self.output_fcs[k](x[i])
                k += 1
        out["Recognition"] = emb
        return {n: out[n] for n in TASK_NAMES}


class SwinFace(nn.Module):
    """The released model by default; `spec` (the "model" part of `swinface bench train`'s
    JSON line) builds any other size the same way ours does."""

    def __init__(self, amp_dtype=torch.float16, spec=None):
        super().__init__()
        if spec is None:
            self.backbone = Backbone(amp_dtype=amp_dtype)
            self.fam, self.tss, self.om = Fam(), Tss(), Om()
            return
        dim, depths = spec["embed_dim"], tuple(spec["depths"])
        self.backbone = Backbone(img=spec["img_size"], patch=spec["patch_size"], dim=dim, depths=depths,
                                 heads=tuple(spec["num_heads"]), window=spec["window_size"],
                                 drop_path=spec["drop_path_rate"], emb=spec["embedding_size"],
                                 amp_dtype=amp_dtype)
        levels = tuple(dim * 2 ** (i + 1) for i in range(len(depths) - 1)) + (dim * 2 ** (len(depths) - 1),)
        feat = spec["fam_feature_dim"]
        self.fam = Fam(levels, feat)
        self.tss = Tss(feat, spec["tss_drop_rate"])
        self.om = Om(feat)

    def set_amp(self, enabled):
        for m in self.modules():
            if isinstance(m, WindowAttention):
                m.amp = enabled

    def forward(self, x):
        local, glob, emb = self.backbone(x)
        return self.om(self.tss(self.fam(torch.cat([local, glob], 1))), emb)


def load_formula(model, parity_dir):
    """Fill every parameter by the parity README's formula (see tests/fixtures/parity/formula.py)."""
    sys.path.insert(0, str(parity_dir))
    from formula import formula_tensor, SKIP
    sd = model.state_dict()
    for k, v in sd.items():
        if k.split(".")[-1] in SKIP:
            continue
        v.copy_(torch.from_numpy(formula_tensor(k, tuple(v.shape))))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--check", action="store_true", help="compare with tests/fixtures/parity")
    args = ap.parse_args()
    if args.check:
        from safetensors.torch import load_file
        parity = Path(__file__).resolve().parents[2] / "tests/fixtures/parity"
        model = SwinFace().eval()
        keys = [l.split("\t")[0] for l in (parity / "official_keys.tsv").read_text().splitlines()[1:]]
        assert list(model.state_dict().keys()) == keys, "state-dict keys differ from the official ones"
        load_formula(model, parity)
        exp = load_file(str(parity / "expected.safetensors"))
        with torch.no_grad():
            out = model(exp["input"])
        worst = max((out[n] - exp["out." + n]).abs().max().item() for n in TASK_NAMES)
        print(f"baseline parity: max abs diff over 43 outputs = {worst:.3g}")
        sys.exit(0 if worst < 1e-4 else 1)


if __name__ == "__main__":
    main()
