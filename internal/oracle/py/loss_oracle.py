"""PyTorch formulations of the losses of package loss, the reference of
loss/loss_test.go. The Go test runs them through ops_oracle.py (oracle.Check)
with the setup line `from loss_oracle import *`.

Each is written the way PyTorch users and MONAI write it, independently of
the Go code: one-hot targets and explicit sums for the overlaps, MONAI's
log-softmax and sigmoid focal formulas, and a brute-force Euclidean distance
for the Dual-Term loss's maps.
"""
import torch
import torch.nn.functional as F


def two(v):
    """The scalar v twice, stacked: oracle.Check weighs the first output's
    elements by sin(1..n) (it was sin(0..n-1), 0 for a scalar), so the
    gradient is checked under two weights."""
    return torch.stack([v, v])


def targets_of(a, b, sigmoid=False, ignore=None):
    """One-hot (or label-map) targets and the valid mask, as loss.targets."""
    c = a.shape[1]
    if b.dim() == 4:
        return b.to(a.dtype), None
    tg = b.clone()
    valid = None
    if ignore is not None:
        valid = (b != ignore).unsqueeze(1).to(a.dtype)
        tg[b == ignore] = 0
    if sigmoid and c == 1:
        t = tg.unsqueeze(1).to(a.dtype)
    else:
        t = F.one_hot(tg, c).permute(0, 3, 1, 2).to(a.dtype)
    if valid is not None:
        t = t * valid
    return t, valid


def region(a, b, kind, smooth=1.0, perclass=False, persample=False, nobg=False, ignore=None,
           sigmoid=False, alpha=0.5, beta=0.5):
    p = a.sigmoid() if sigmoid else a.softmax(1)
    t, valid = targets_of(a, b, sigmoid, ignore)
    if valid is not None:
        p = p * valid
    if nobg:
        p, t = p[:, 1:], t[:, 1:]
    dims = [2, 3]
    if not persample:
        dims.append(0)
    if not perclass:
        dims.append(1)
    tp = (p * t).sum(dims)
    if kind == 'iou':
        r = (tp + smooth) / (p.sum(dims) + t.sum(dims) - tp + smooth)
    elif kind == 'dice':
        r = (2 * tp + smooth) / (p.sum(dims) + t.sum(dims) + smooth)
    else:  # MONAI's TverskyLoss: alpha on false positives, beta on false negatives
        fp = (p * (1 - t)).sum(dims)
        fn = ((1 - p) * t).sum(dims)
        r = (tp + smooth) / (tp + alpha * fp + beta * fn + smooth)
    return 1 - r.mean()


def _alpha_vector(alpha, c, sigmoid):
    if alpha is None:
        return None
    if isinstance(alpha, (int, float)):
        return [alpha] * c if sigmoid else [1 - alpha] + [alpha] * (c - 1)
    return list(alpha)


def focal(a, b, gamma=2.0, alpha=0.5, scale=1.0, ignore=None):
    """MONAI's softmax_focal_loss, summed over the channels (MONAI's mean also
    divides by them) and averaged over the valid pixels."""
    c = a.shape[1]
    t, valid = targets_of(a, b, False, ignore)
    ls = a.log_softmax(1)
    loss = -(1 - ls.exp()).pow(gamma) * ls * t
    w = _alpha_vector(alpha, c, False)
    if w is not None:
        loss = torch.tensor(w, dtype=a.dtype).view(1, -1, 1, 1) * loss
    loss = scale * loss.sum(1)
    if valid is None:
        return loss.mean()
    return loss.sum() / valid.sum().clamp(min=1)


def sigmoid_focal(a, b, gamma=2.0, alpha=0.5, scale=1.0, ignore=None):
    """MONAI's sigmoid_focal_loss, averaged over the valid elements."""
    c = a.shape[1]
    t, valid = targets_of(a, b, True, ignore)
    loss = a - a * t - F.logsigmoid(a)
    invprobs = F.logsigmoid(-a * (t * 2 - 1))
    loss = (invprobs * gamma).exp() * loss
    w = _alpha_vector(alpha, c, True)
    if w is not None:
        al = torch.tensor(w, dtype=a.dtype).view(1, -1, 1, 1)
        loss = (t * al + (1 - t) * (1 - al)) * loss
    loss = scale * loss
    if valid is None:
        return loss.mean()
    return (loss * valid).sum() / (valid.sum() * c).clamp(min=1)


def bce(a, b, ignore=None):
    t, valid = targets_of(a, b, True, ignore)
    if valid is None:
        return F.binary_cross_entropy_with_logits(a, t)
    per = F.binary_cross_entropy_with_logits(a, t, reduction='none') * valid
    return per.sum() / (valid.sum() * a.shape[1]).clamp(min=1)


def shape_maps(b, c, k, ignore=None):
    """The Dual-Term loss's maps D [N, C-1, H, W] by brute force: for every
    pixel of class c the distance to the nearest pixel of another class,
    over every pair of pixels."""
    n, h, w = b.shape
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')
    pts = torch.stack([yy.reshape(-1), xx.reshape(-1)], 1).to(torch.float64)
    out = torch.zeros(n, c - 1, h, w, dtype=torch.float64)
    for i in range(n):
        lab = b[i].reshape(-1)
        for cl in range(1, c):
            inside = lab == cl
            if ignore is not None:
                inside &= lab != ignore
            if not inside.any():
                continue
            if inside.all():
                dn = torch.zeros(h * w, dtype=torch.float64)
            else:
                diff = pts[:, None, :] - pts[~inside][None, :, :]
                d = (diff ** 2).sum(-1).min(1).values.sqrt() * inside
                dn = d / (d.max() + 1e-8)
            out[i, cl - 1] = (inside * torch.sigmoid((1 - dn) / k)).reshape(h, w)
    return out


def dualterm(a, b, lam=1.0, k=0.2, smooth=1.0, ignore=None):
    c = a.shape[1]
    t, valid = targets_of(a, b, False, ignore)
    p = a.softmax(1)
    if valid is not None:
        p = p * valid
    p, t = p[:, 1:], t[:, 1:]
    d = shape_maps(b, c, k, ignore).to(a.dtype)
    dims = (2, 3)
    region = 1 - ((2 * (p * t).sum(dims) + smooth) / (p.sum(dims) + t.sum(dims) + smooth)).mean()
    shape = ((d - p).abs().sum(dims) / (p.sum(dims) + smooth)).mean()
    return region + lam * shape
