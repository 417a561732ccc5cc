"""The CNN training of bench/cnn.c in PyTorch: LeNet-5, the ConvNet and ResNet-20 on 28x28 grey
images, SGD with momentum 0.9 on the cross entropy, one batch already on the device, `steps` timed
after `warmup`; eager and under torch.compile(mode="reduce-overhead"), cudnn.benchmark on. One JSON
line per (model, variant) with bench/cnn.c's fields.

    python3 cnn_torch.py [--model lenet|convnet|resnet20|all] [--device cuda:0] [--batch B]
                         [--steps 50] [--warmup 10] [--variants eager,compiled] [--tf32]

Convolutions and matrix products run in f32 on FMA math (cudnn.allow_tf32 off, PyTorch's default
for matrix products but not for convolutions), as bench/cnn.c's default; --tf32 allows TF32 in both
(bench/cnn.c --matmul tf32). "compiled" is the model under torch.compile(mode="reduce-overhead")
(CUDA graphs), each step marked (torch.compiler.cudagraph_mark_step_begin), the optimizer's
foreach SGD eager: compiling the optimizer step inside the same graphs overwrites its state
between replays.

The models are bench/cnn.c's (include/loom/nn.h): LeNet-5 conv 6 5x5 pad 2, ReLU, max pool, conv 16
5x5, ReLU, max pool, fc 120, 84, 10; the ConvNet conv 64 3x3 pad 1, ReLU, max pool, conv 128 3x3 pad
1, ReLU, max pool, fc 256, 10; ResNet-20 a conv 16 with batch norm, three stages of three basic
blocks (16, 32, 64 channels, 1x1 convolution and batch norm shortcuts where the shape changes),
global average pooling, fc 10."""

import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 6, 5, padding=2), nn.Conv2d(6, 16, 5)
        self.fc1, self.fc2, self.fc3 = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x.flatten(1))))))


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 64, 3, padding=1), nn.Conv2d(64, 128, 3, padding=1)
        self.fc1, self.fc2 = nn.Linear(128 * 7 * 7, 256), nn.Linear(256, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return F.relu(h + (self.short(x) if self.short is not None else x))


class ResNet20(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem, self.bn = nn.Conv2d(1, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16)
        blocks, cin = [], 16
        for stage, cout in enumerate((16, 32, 64)):
            for b in range(3):
                blocks.append(Block(cin, cout, 2 if stage > 0 and b == 0 else 1))
                cin = cout
        self.blocks, self.fc = nn.Sequential(*blocks), nn.Linear(64, 10)

    def forward(self, x):
        x = self.blocks(F.relu(self.bn(self.stem(x))))
        return self.fc(x.mean((2, 3)))


MODELS = {"lenet": (LeNet5, 256), "convnet": (ConvNet, 512), "resnet20": (ResNet20, 128)}


def bench(name, variant, dev, batch, steps, warmup):
    torch.manual_seed(0)
    model = MODELS[name][0]().to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x = (torch.arange(batch * 28 * 28, device=dev, dtype=torch.float32).reshape(batch, 1, 28, 28) * 0.37).sin()
    y = torch.arange(batch, device=dev) % 10

    fwd = torch.compile(model, mode="reduce-overhead") if variant == "compiled" else model

    def step():
        if variant == "compiled":
            torch.compiler.cudagraph_mark_step_begin()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(fwd(x), y)
        loss.backward()
        opt.step()
        return loss.detach()

    math = "tf32" if torch.backends.cudnn.allow_tf32 else "f32"
    line = {"case": "cnn", "model": name, "impl": "torch", "variant": variant, "math": math, "device": str(dev), "batch": batch,
            "steps": steps, "warmup": warmup, "torch": torch.__version__}
    try:
        for _ in range(warmup):
            loss = step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
            torch.cuda.reset_peak_memory_stats(dev)
        t0 = time.perf_counter()
        for _ in range(steps):
            loss = step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        secs = time.perf_counter() - t0
        line.update({"ms_per_iter": 1e3 * secs / steps, "images_per_s": batch * steps / secs,
                     "peak_bytes": torch.cuda.max_memory_allocated(dev) if dev.type == "cuda" else None,
                     "final_loss": float(loss.detach())})
    except Exception as e:  # a failing variant (a compiler missing on the machine) leaves the others' lines
        line["error"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    print(json.dumps(line), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="all")
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--batch", type=int, default=0)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--variants", default="eager,compiled")
    ap.add_argument("--tf32", action="store_true")
    a = ap.parse_args()
    torch.backends.cudnn.allow_tf32 = a.tf32
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    dev = torch.device(a.device if (a.device == "cpu" or torch.cuda.is_available()) else "cpu")
    torch.backends.cudnn.benchmark = True
    for name in MODELS if a.model == "all" else [a.model]:
        for variant in a.variants.split(","):
            bench(name, variant, dev, a.batch or MODELS[name][1], a.steps, a.warmup)


if __name__ == "__main__":
    main()
