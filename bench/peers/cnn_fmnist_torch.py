"""examples/cnn_fmnist.c's training in PyTorch, for its test accuracy: the same model (cnn_torch.py's,
which are bench/cnn.c's), SGD with momentum on the cross entropy, weight decay, an optional cosine
schedule over every step (to 0), pixels normalised with the training set's mean and standard
deviation, and with --augment random crops (padding 2) and horizontal flips. One JSON line per
epoch: loss, images/s and test accuracy.

    python3 cnn_fmnist_torch.py [--model lenet|convnet|resnet20] [--data DIR] [--batch B] [--epochs E]
                                [--lr 0.05] [--momentum 0.9] [--weight-decay 0] [--cosine] [--augment]
                                [--device cuda:0] [--seed 0]

DIR holds the gzip'd IDX files (default /usr/share/datasets/fashion-mnist, else
$LOOM_DATA/fashion-mnist)."""

import argparse
import gzip
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from cnn_torch import MODELS


def idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(d, part):
    return idx(os.path.join(d, f"{part}-images-idx3-ubyte.gz")), idx(os.path.join(d, f"{part}-labels-idx1-ubyte.gz"))


def augment(x, gen):
    n = x.shape[0]
    pad = F.pad(x, (2, 2, 2, 2))
    dy = torch.randint(0, 5, (n,), generator=gen, device="cpu").to(x.device)
    dx = torch.randint(0, 5, (n,), generator=gen, device="cpu").to(x.device)
    rows = (dy[:, None] + torch.arange(28, device=x.device)[None, :])[:, None, :, None].expand(n, 1, 28, 32)
    x = pad.gather(2, rows)
    cols = (dx[:, None] + torch.arange(28, device=x.device)[None, :])[:, None, None, :].expand(n, 1, 28, 28)
    x = x.gather(3, cols)
    flip = (torch.rand(n, generator=gen, device="cpu") < 0.5).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="lenet")
    ap.add_argument("--data", default="")
    ap.add_argument("--batch", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--cosine", action="store_true")
    ap.add_argument("--augment", action="store_true")
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    d = a.data or ("/usr/share/datasets/fashion-mnist" if os.path.isdir("/usr/share/datasets/fashion-mnist")
                   else os.path.join(os.environ.get("LOOM_DATA", "."), "fashion-mnist"))
    dev = torch.device(a.device if (a.device == "cpu" or torch.cuda.is_available()) else "cpu")
    torch.manual_seed(a.seed)
    torch.backends.cudnn.benchmark = True
    (xtr, ytr), (xte, yte) = load(d, "train"), load(d, "t10k")
    mean, std = xtr.mean() / 255.0, (xtr / 255.0).std()
    xtr = ((torch.tensor(xtr, dtype=torch.float32) / 255.0 - mean) / std)[:, None].to(dev)
    xte = ((torch.tensor(xte, dtype=torch.float32) / 255.0 - mean) / std)[:, None].to(dev)
    ytr, yte = torch.tensor(ytr, dtype=torch.long).to(dev), torch.tensor(yte, dtype=torch.long).to(dev)
    model = MODELS[a.model][0]().to(dev)
    batch = a.batch or MODELS[a.model][1]
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=a.momentum, weight_decay=a.weight_decay)
    steps_per_epoch = math.ceil(xtr.shape[0] / batch)
    total = steps_per_epoch * a.epochs
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, total) if a.cosine else None
    gen = torch.Generator().manual_seed(a.seed)
    for epoch in range(1, a.epochs + 1):
        model.train()
        perm = torch.randperm(xtr.shape[0], generator=gen).to(dev)
        t0, seen, loss_sum = time.perf_counter(), 0, 0.0
        for s in range(steps_per_epoch):
            sel = perm[s * batch:(s + 1) * batch]
            x = xtr[sel]
            if a.augment:
                x = augment(x, gen)
            loss = F.cross_entropy(model(x), ytr[sel])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched:
                sched.step()
            loss_sum += float(loss.detach()) * sel.shape[0]
            seen += sel.shape[0]
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        secs = time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            correct = sum(int((model(xte[i:i + 1000]).argmax(1) == yte[i:i + 1000]).sum())
                          for i in range(0, xte.shape[0], 1000))
        print(json.dumps({"case": "cnn_fmnist", "impl": "torch", "model": a.model, "epoch": epoch, "batch": batch,
                          "loss": loss_sum / seen, "images_per_s": seen / secs,
                          "test_accuracy": correct / xte.shape[0], "augment": a.augment, "cosine": a.cosine,
                          "device": str(dev), "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
