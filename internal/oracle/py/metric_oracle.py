"""MONAI's segmentation metrics, re-implemented, as the oracle of metric/.

MONAI (github.com/Project-MONAI/MONAI, monai/metrics) is not installed here,
nor is scipy, so its definitions are written out from its source with numpy
and torch:

- DiceHelper.compute_channel (meandice.py) and compute_iou (meaniou.py),
  with ignore_empty True and False;
- get_mask_edges (utils.py): the masks cropped to the bounding box of their
  union with a margin of 1 (CropForeground, allow_smaller=False, zero
  padding), edges = mask XOR binary_erosion(mask) with scipy's default
  4-neighbour cross and border_value 0;
- get_surface_distance: the Euclidean distance, with the pixel spacing, from
  each edge pixel of one mask to the nearest edge pixel of the other, by
  brute force over pairs instead of scipy's distance_transform_edt (the
  same value), infinity when one side has no edge;
- compute_hausdorff_distance (percentile None and 95, torch.quantile) and
  compute_average_surface_distance (symmetric and not);
- do_metric_reduction ("mean" and "mean_batch"), NaN left out.

Distances stay in float64 (MONAI casts them to float32) so that the Go side
can be held to 1e-9.

argv[1]: a JSON list of cases, each {"classes": C, "ignore": v (-1: none), "images":
[{"h", "w", "spacing": [row, col], "pred": [...], "truth": [...]}]};
argv[2]: where the JSON list of answers goes. Non-finite numbers are written as the
strings "nan", "inf".
"""
import json
import math
import sys

import numpy as np
import torch


def compute_channel(y_pred, y, ignore_empty):
    """DiceHelper.compute_channel on boolean arrays."""
    y_o = y.sum()
    if y_o > 0:
        return 2.0 * (y & y_pred).sum() / (y_o + y_pred.sum())
    if ignore_empty:
        return math.nan
    return 1.0 if y_o + y_pred.sum() <= 0 else 0.0


def compute_iou(y_pred, y, ignore_empty):
    """compute_iou for one image and class."""
    inter = (y & y_pred).sum()
    y_o, p_o = y.sum(), y_pred.sum()
    union = y_o + p_o - inter
    if ignore_empty:
        return inter / union if y_o > 0 else math.nan
    return inter / union if union > 0 else 1.0


def erode(m):
    """scipy.ndimage.binary_erosion(m): cross structure, border_value 0."""
    p = np.pad(m, 1, constant_values=False)
    return p[1:-1, 1:-1] & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]


def get_mask_edges(seg_pred, seg_gt):
    or_vol = seg_pred | seg_gt
    if not or_vol.any():
        return np.zeros_like(seg_pred), np.zeros_like(seg_gt)
    ys, xs = np.nonzero(or_vol)
    # CropForeground with margin 1 and allow_smaller=False: the box may
    # leave the image, and what lies outside is zero padding.
    y0, y1, x0, x1 = ys.min() - 1, ys.max() + 2, xs.min() - 1, xs.max() + 2
    h, w = seg_pred.shape

    def crop(m):
        out = np.zeros((y1 - y0, x1 - x0), dtype=bool)
        sy0, sx0 = max(y0, 0), max(x0, 0)
        sy1, sx1 = min(y1, h), min(x1, w)
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = m[sy0:sy1, sx0:sx1]
        return out

    p, g = crop(seg_pred), crop(seg_gt)
    return erode(p) ^ p, erode(g) ^ g


def get_surface_distance(seg_pred, seg_gt, spacing):
    """Distances from each pixel of seg_pred to the nearest of seg_gt."""
    if not seg_gt.any():
        return np.full(int(seg_pred.sum()), np.inf)
    if not seg_pred.any():
        return np.full(int(seg_gt.sum()), np.inf)
    a = np.argwhere(seg_pred).astype(np.float64) * spacing
    b = np.argwhere(seg_gt).astype(np.float64) * spacing
    d = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    return d.min(1)


def percentile_hd(d, percentile):
    """_compute_percentile_hausdorff_distance."""
    if d.shape == (0,):
        return math.nan
    t = torch.tensor(d, dtype=torch.float64)
    if not percentile:
        return t.max().item()
    return torch.quantile(t, percentile / 100).item()


def hausdorff(y_pred, y, spacing, percentile):
    ep, eg = get_mask_edges(y_pred, y)
    ds = [get_surface_distance(ep, eg, spacing), get_surface_distance(eg, ep, spacing)]
    # torch.max(torch.stack(...)): a NaN (no edge on either side) wins.
    return torch.max(torch.tensor([percentile_hd(d, percentile) for d in ds], dtype=torch.float64)).item()


def average_surface(y_pred, y, spacing, symmetric):
    ep, eg = get_mask_edges(y_pred, y)
    ds = [get_surface_distance(ep, eg, spacing)]
    if symmetric:
        ds.append(get_surface_distance(eg, ep, spacing))
    d = np.concatenate(ds)
    return math.nan if d.shape == (0,) else float(d.mean())


def do_metric_reduction(f, reduction):
    """monai.metrics.utils.do_metric_reduction for "mean" and "mean_batch"."""
    f = f.clone()
    nans = torch.isnan(f)
    not_nans = ~nans
    t_zero = torch.zeros(1, dtype=f.dtype)
    f[nans] = 0
    if reduction == "mean":
        not_nans = not_nans.sum(dim=1).to(f.dtype)
        f = torch.where(not_nans > 0, f.sum(dim=1) / not_nans, t_zero)
        not_nans = (not_nans > 0).sum(dim=0).to(f.dtype)
        f = torch.where(not_nans > 0, f.sum(dim=0) / not_nans, t_zero)
    elif reduction == "mean_batch":
        not_nans = not_nans.sum(dim=0).to(f.dtype)
        f = torch.where(not_nans > 0, f.sum(dim=0) / not_nans, t_zero)
    else:
        raise ValueError(reduction)
    return f, not_nans


def enc(x):
    if isinstance(x, (list, tuple)):
        return [enc(v) for v in x]
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def evaluate(case):
    classes, ignore = case["classes"], case["ignore"]
    per_image = []
    ours = {k: [] for k in ("dice", "iou", "assd", "hd95", "hd", "asd_pred", "asd_truth")}
    for img in case["images"]:
        h, w, sp = img["h"], img["w"], np.array(img["spacing"], dtype=np.float64)
        pred = np.array(img["pred"], dtype=np.int64).reshape(h, w)
        truth = np.array(img["truth"], dtype=np.int64).reshape(h, w)
        valid = truth != ignore if ignore >= 0 else np.ones_like(truth, dtype=bool)
        res = {k: [] for k in ("dice", "dice_all", "iou", "iou_all", "assd", "hd95", "hd", "asd_pred", "asd_truth")}
        row = {k: [] for k in ours}
        diag = math.hypot(h * sp[0], w * sp[1])
        for c in range(classes):
            # One-hot channels; an ignored truth pixel is in no channel.
            p, t = (pred == c) & valid, (truth == c) & valid
            d_ie, d_all = compute_channel(p, t, True), compute_channel(p, t, False)
            i_ie, i_all = compute_iou(p, t, True), compute_iou(p, t, False)
            res["dice"].append(d_ie)
            res["dice_all"].append(d_all)
            res["iou"].append(i_ie)
            res["iou_all"].append(i_all)
            # jmedseg's rule: undefined (NaN) only when the class is in
            # neither mask; truth empty, prediction not: MONAI's
            # ignore_empty=False value, 0.
            both_empty = not t.any() and not p.any()
            row["dice"].append(math.nan if both_empty else (d_ie if t.any() else d_all))
            row["iou"].append(math.nan if both_empty else (i_ie if t.any() else i_all))
            if c == 0:
                continue  # MONAI's include_background=False for distances
            s = {"assd": average_surface(p, t, sp, True), "hd95": hausdorff(p, t, sp, 95),
                 "hd": hausdorff(p, t, sp, None), "asd_pred": average_surface(p, t, sp, False),
                 "asd_truth": average_surface(t, p, sp, False)}
            one_empty = t.any() != p.any()
            for k, v in s.items():
                res[k].append(v)
                # jmedseg's rule: both empty (MONAI: NaN) stays out of the
                # means; one empty scores the image diagonal, where MONAI
                # gives infinity (HD95: NaN, torch.quantile of infinities).
                row[k].append(diag if one_empty else v)
        per_image.append({k: enc(v) for k, v in res.items()})
        for k in ours:
            ours[k].append(row[k])
    means = {}
    for k, rows in ours.items():
        f = torch.tensor(rows, dtype=torch.float64).reshape(len(rows), -1)
        m, n = do_metric_reduction(f, "mean_batch")
        means[k] = {"per_class": enc(m.tolist()), "images": n.tolist()}
        if k in ("dice", "iou") and f.shape[1] > 1:
            fg, nfg = do_metric_reduction(f[:, 1:], "mean")
            means[k]["foreground"], means[k]["foreground_images"] = enc(fg.item()), nfg.item()
    return {"per_image": per_image, "means": means}


def main():
    torch.set_num_threads(1)
    json.dump([evaluate(c) for c in json.load(open(sys.argv[1]))], open(sys.argv[2], "w"))


if __name__ == "__main__":
    main()
