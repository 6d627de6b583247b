"""Reference for the IJB-C 1:1 protocol, written as insightface's eval_ijbc.py computes it,
for the Rust tests (crates/trainer/src/eval/metrics/parity.rs). numpy only: sklearn's
`normalize` and `roc_curve` are written out from their definitions (sklearn is not in the venv).

stdin: JSON {plain, flipped: [N][D] float32 values; scores: [N] detector scores as text;
templates, medias: [N]; p1, p2, label: [P]}. stdout: JSON {scores, fpr, tpr, tar, auc}.
"""
import json
import sys

import numpy as np


def normalize(x):
    # sklearn.preprocessing.normalize(x) (norm='l2', axis=1)
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    norms[norms == 0.0] = 1.0
    return x / norms[:, np.newaxis]


def image2template_feature(img_feats, templates, medias):
    unique_templates = np.unique(templates)
    template_feats = np.zeros((len(unique_templates), img_feats.shape[1]))
    for count_template, uqt in enumerate(unique_templates):
        (ind_t,) = np.where(templates == uqt)
        face_norm_feats = img_feats[ind_t]
        face_medias = medias[ind_t]
        unique_medias, unique_media_counts = np.unique(face_medias, return_counts=True)
        media_norm_feats = []
        for u, ct in zip(unique_medias, unique_media_counts):
            (ind_m,) = np.where(face_medias == u)
            if ct == 1:
                media_norm_feats += [face_norm_feats[ind_m]]
            else:
                media_norm_feats += [np.mean(face_norm_feats[ind_m], axis=0, keepdims=True)]
        media_norm_feats = np.array(media_norm_feats)
        template_feats[count_template] = np.sum(media_norm_feats, axis=0)
    return normalize(template_feats), unique_templates


def verification(template_norm_feats, unique_templates, p1, p2):
    template2id = np.zeros((max(unique_templates) + 1, 1), dtype=int)
    for count_template, uqt in enumerate(unique_templates):
        template2id[uqt] = count_template
    feat1 = template_norm_feats[template2id[p1]]
    feat2 = template_norm_feats[template2id[p2]]
    return np.sum(feat1 * feat2, -1).flatten()


def roc_curve(y_true, y_score):
    # sklearn.metrics.roc_curve(y_true, y_score) with drop_intermediate=True.
    desc = np.argsort(y_score, kind="mergesort")[::-1]
    y_score = y_score[desc]
    y_true = y_true[desc]
    distinct = np.where(np.diff(y_score))[0]
    threshold_idxs = np.r_[distinct, y_true.size - 1]
    tps = np.cumsum(y_true, dtype=np.float64)[threshold_idxs]
    fps = 1 + threshold_idxs - tps
    if len(fps) > 2:
        optimal = np.where(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])[0]
        fps, tps = fps[optimal], tps[optimal]
    tps = np.r_[0, tps]
    fps = np.r_[0, fps]
    return fps / fps[-1], tps / tps[-1]


def main():
    d = json.load(sys.stdin)
    plain = np.asarray(d["plain"], dtype=np.float32)
    flipped = np.asarray(d["flipped"], dtype=np.float32)
    img_feats = np.concatenate([plain, flipped], axis=1)
    faceness_scores = np.array(d["scores"]).astype(np.float32)
    templates = np.asarray(d["templates"], dtype=np.int64)
    medias = np.asarray(d["medias"], dtype=np.int64)
    p1 = np.asarray(d["p1"], dtype=np.int64)
    p2 = np.asarray(d["p2"], dtype=np.int64)
    label = np.asarray(d["label"], dtype=np.int64)

    half = img_feats.shape[1] // 2
    img_input_feats = img_feats[:, 0:half] + img_feats[:, half:]
    img_input_feats = img_input_feats * faceness_scores[:, np.newaxis]
    template_norm_feats, unique_templates = image2template_feature(img_input_feats, templates, medias)
    score = verification(template_norm_feats, unique_templates, p1, p2)

    fpr, tpr = roc_curve(label, score)
    auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))
    fpr = np.flipud(fpr)
    tpr = np.flipud(tpr)
    tars = []
    for x in [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1]:
        _, min_index = min(list(zip(abs(fpr - x), range(len(fpr)))))
        tars.append(float(tpr[min_index]))
    json.dump(
        {
            "scores": score.tolist(),
            "fpr": np.flipud(fpr).tolist(),
            "tpr": np.flipud(tpr).tolist(),
            "tar": tars,
            "auc": auc,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
