"""PyTorch oracle for sas's contrastive pretraining (sas/sas_test.go).

argv: threads, then pairs in.safetensors out.safetensors (one per case,
all in one process: importing torch is the slow part). An input holds a tiny
encoder's state ("enc." + conv, bn, conv2), the projection head's
("head.fc."), the queue (membank, moco), the views of each step
("v1.<i>", "v2.<i>"), and in its metadata the method, temperature,
momentum, learning rate and number of steps. The script trains as the
published formulations do (MoCo: He et al. 2020, moco/builder.py; SimCLR's
NT-Xent: Chen et al. 2020; membank: the reference's keys from the same
encoder, detached) with torch.optim.Adam, and writes the loss and top-1 hits
of every step, the encoder and head after the last step, for MoCo the key
encoder and head, and the queue.
"""
import copy
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

import stio


class Tiny(nn.Module):
    def __init__(self, cin, c):
        super().__init__()
        self.conv = nn.Conv2d(cin, c, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, stride=2, padding=1)

    def forward(self, x):
        return self.conv2(F.relu(self.bn(self.conv(x))))


class Head(nn.Module):
    def __init__(self, c, dim):
        super().__init__()
        self.fc = nn.Linear(4 * c, dim)

    def forward(self, f):
        z = self.fc(F.relu(torch.flatten(F.adaptive_avg_pool2d(f, 2), 1)))
        return F.normalize(z, dim=1)


def sub(ts, prefix):
    return {k[len(prefix):]: v for k, v in ts.items() if k.startswith(prefix)}


def main():
    torch.set_num_threads(int(sys.argv[1]))
    for i in range(2, len(sys.argv), 2):
        run(sys.argv[i], sys.argv[i + 1])


def run(src, dst):
    ts, meta = stio.read(src)
    method, temp, m = meta["method"], float(meta["temperature"]), float(meta["momentum"])
    lr, steps = float(meta["lr"]), int(meta["steps"])
    w = ts["enc.conv.weight"]
    enc = Tiny(w.shape[1], w.shape[0])
    enc.load_state_dict(sub(ts, "enc."))
    hw = ts["head.fc.weight"]
    head = Head(hw.shape[1] // 4, hw.shape[0])
    head.load_state_dict(sub(ts, "head."))
    enc.train()
    head.train()
    params = list(enc.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    queue = ts["queue"].clone() if "queue" in ts else None
    ptr = 0
    if method == "moco":
        enc_k, head_k = copy.deepcopy(enc), copy.deepcopy(head)
        for p in list(enc_k.parameters()) + list(head_k.parameters()):
            p.requires_grad = False
        params_k = list(enc_k.parameters()) + list(head_k.parameters())
    out = {}
    for i in range(steps):
        v1, v2 = ts["v1.%d" % i], ts["v2.%d" % i]
        if method == "simclr":
            z1, z2 = head(enc(v1)), head(enc(v2))
            n = z1.shape[0]
            z = torch.cat([z1, z2])
            logits = (z @ z.t() / temp).masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
            labels = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
            k = None
        else:
            q = head(enc(v1))
            with torch.no_grad():
                if method == "moco":
                    for pk, pq in zip(params_k, params):
                        pk.data = pk.data * m + pq.data * (1.0 - m)
                    k = head_k(enc_k(v2))
                else:
                    k = head(enc(v2))
            l_pos = torch.einsum("nc,nc->n", q, k).unsqueeze(-1)
            l_neg = torch.einsum("nc,ck->nk", q, queue.clone().detach().t())
            logits = torch.cat([l_pos, l_neg], 1) / temp
            labels = torch.zeros(logits.shape[0], dtype=torch.long)
        loss = F.cross_entropy(logits, labels)
        out["loss.%d" % i] = loss.detach().double().reshape(1)
        out["hits.%d" % i] = (logits.argmax(1) == labels).sum().double().reshape(1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if k is not None:
            n = k.shape[0]
            for j in range(n):  # a ring buffer, as sas.enqueue writes it
                queue[(ptr + j) % queue.shape[0]] = k[j]
            ptr = (ptr + n) % queue.shape[0]
    for name, mod in [("enc.", enc), ("head.", head)] + ([("key.", enc_k), ("keyhead.", head_k)] if method == "moco" else []):
        for k, v in mod.state_dict().items():
            out[name + k] = v
    if queue is not None:
        out["queue"] = queue
    stio.write(dst, out)


main()
