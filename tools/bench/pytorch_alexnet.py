#!/usr/bin/env python3
"""The paper's two-tower AlexNet in PyTorch, timed the way alexnet-bench times ours.

The yardstick for our CUDA backend: the same network (README, "The network and the math"), the
same update, fp32 with TF32 off (our kernels are plain fp32), batch 128 of synthetic data already
on the device. Prints one JSON line per mode (eager, compile) with the median step time and images/s.

    python3 tools/bench/pytorch_alexnet.py --device cuda            # on the GPU machine
    /usr/bin/python3 tools/bench/pytorch_alexnet.py --device cpu --batch 2 --steps 2 --warmup 1

A mode that cannot run (torch.compile before PyTorch 2, or a compile failure) prints a JSON line
with "skipped" and the reason instead, so a caller's table still has a row for it.
"""

import argparse
import json
import statistics
import sys
import time

import torch
from torch import nn
import torch.nn.functional as F

# The paper's LRN constants (the paper's §3.3). The paper does not divide alpha by n; PyTorch does.
LRN_SIZE, LRN_K, LRN_ALPHA, LRN_BETA = 5, 2.0, 1e-4, 0.75


class TowerLRN(nn.Module):
    """LRN within each tower's own half of the channels (channel 47 and 48 are not neighbours),
    with PyTorch's alpha set to alpha·n so that its alpha/n is the paper's alpha."""

    def __init__(self, towers=2):
        super().__init__()
        self.towers = towers
        self.lrn = nn.LocalResponseNorm(LRN_SIZE, alpha=LRN_ALPHA * LRN_SIZE, beta=LRN_BETA,
                                        k=LRN_K)

    def forward(self, x):
        return torch.cat([self.lrn(h) for h in x.chunk(self.towers, dim=1)], dim=1)


class AlexNet(nn.Module):
    """Two towers written as grouped convolutions: groups=2 where a layer reads its own tower's
    half (conv2, conv4, conv5), full where it reads both (conv3, fc6, fc7, fc8)."""

    def __init__(self, num_classes=1000, dropout=0.5):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 96, 11, stride=4)
        self.conv2 = nn.Conv2d(96, 256, 5, padding=2, groups=2)
        self.conv3 = nn.Conv2d(256, 384, 3, padding=1)
        self.conv4 = nn.Conv2d(384, 384, 3, padding=1, groups=2)
        self.conv5 = nn.Conv2d(384, 256, 3, padding=1, groups=2)
        self.fc6 = nn.Linear(256 * 6 * 6, 4096)
        self.fc7 = nn.Linear(4096, 4096)
        self.fc8 = nn.Linear(4096, num_classes)
        self.lrn1, self.lrn2 = TowerLRN(), TowerLRN()
        self.dropout = dropout
        # The paper's init: weights N(0, 0.01²); biases 1 in conv2, conv4, conv5, fc6, fc7.
        for name, layer in self.named_children():
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(layer.weight, 0.0, 0.01)
                nn.init.constant_(layer.bias, 1.0 if name in ("conv2", "conv4", "conv5", "fc6",
                                                              "fc7") else 0.0)

    def forward(self, x):  # x: (N, 3, 227, 227)
        x = F.max_pool2d(self.lrn1(F.relu(self.conv1(x))), 3, 2)  # (N, 96, 27, 27)
        x = F.max_pool2d(self.lrn2(F.relu(self.conv2(x))), 3, 2)  # (N, 256, 13, 13)
        x = F.relu(self.conv3(x))
        x = F.relu(self.conv4(x))
        x = F.max_pool2d(F.relu(self.conv5(x)), 3, 2)  # (N, 256, 6, 6)
        x = torch.flatten(x, 1)  # index c·36 + h·6 + w, as our fc6
        x = F.dropout(F.relu(self.fc6(x)), self.dropout, self.training)
        x = F.dropout(F.relu(self.fc7(x)), self.dropout, self.training)
        return self.fc8(x)


def check_lrn():
    """TowerLRN against the paper's formula written out in float64: a wrong alpha·n or a window
    that crosses the towers would show here, before any timing."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(2, 8, 3, 3, generator=gen, dtype=torch.float64) * 30
    got = TowerLRN()(a)
    want = torch.empty_like(a)
    half = a.shape[1] // 2
    for i in range(a.shape[1]):
        lo_t, hi_t = (0, half) if i < half else (half, a.shape[1])  # the tower's own maps
        lo, hi = max(lo_t, i - LRN_SIZE // 2), min(hi_t - 1, i + LRN_SIZE // 2)
        s = (a[:, lo:hi + 1] ** 2).sum(dim=1)
        want[:, i] = a[:, i] / (LRN_K + LRN_ALPHA * s) ** LRN_BETA
    err = ((got - want).norm() / want.norm()).item()
    if not err < 1e-12:
        sys.exit(f"pytorch_alexnet.py: TowerLRN differs from the paper's formula (rel. err {err})")


def make_optimizer(model):
    """SGD as the paper's §5 (momentum 0.9, weight decay 5e-4, lr 0.01); PyTorch's form of the
    update is the same at a fixed lr. Biases are not decayed (our optim.decay_biases default)."""
    weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
    biases = [p for n, p in model.named_parameters() if n.endswith("bias")]
    return torch.optim.SGD([{"params": weights, "weight_decay": 5e-4},
                            {"params": biases, "weight_decay": 0.0}], lr=0.01, momentum=0.9)


class Timer:
    """CUDA events on the GPU (the time the device spent, not the Python launch loop's); the wall
    clock on the CPU."""

    def __init__(self, device):
        self.cuda = device.type == "cuda"

    def time(self, fn):
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            out = fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1e3, out
        t0 = time.perf_counter()
        out = fn()
        return time.perf_counter() - t0, out


def run_mode(mode, args, device):
    torch.manual_seed(1)
    model = AlexNet().to(device).train()
    opt = make_optimizer(model)
    forward = model
    if mode == "compile":
        if not hasattr(torch, "compile"):
            return {"skipped": f"torch.compile does not exist in PyTorch {torch.__version__}"}
        forward = torch.compile(model)
    # Synthetic data already on the device: the step alone is measured, not the input pipeline.
    x = torch.randn(args.batch, 3, 227, 227, device=device) * 50
    y = torch.randint(0, 1000, (args.batch,), device=device)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(forward(x), y)
        loss.backward()
        opt.step()
        return loss

    timer = Timer(device)
    try:
        first_s, loss = timer.time(step)  # for compile: tracing and code generation
        loss_first = loss.item()
        for _ in range(max(args.warmup - 1, 0)):
            step()
        times = []
        for _ in range(args.steps):
            seconds, loss = timer.time(step)
            times.append(seconds)
    except Exception as e:  # a compile failure must not cost the eager row
        if mode != "compile":
            raise
        return {"skipped": f"torch.compile failed: {type(e).__name__}: {str(e).splitlines()[0]}"}
    median = statistics.median(times)
    return {"first_step_s": round(first_s, 3), "median_ms": round(median * 1e3, 3),
            "min_ms": round(min(times) * 1e3, 3), "images_per_s": round(args.batch / median, 1),
            "loss_first": round(loss_first, 4), "loss_last": round(loss.item(), 4)}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=50, help="timed steps (the median is reported)")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps first (cuDNN's search, "
                                                          "torch.compile's code generation)")
    p.add_argument("--modes", default="eager,compile", help="comma-separated: eager, compile")
    args = p.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("pytorch_alexnet.py: --device cuda but torch.cuda.is_available() is False")

    # Plain fp32, as our kernels: no TF32 in cuBLAS or cuDNN.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    if hasattr(torch, "set_float32_matmul_precision"):
        torch.set_float32_matmul_precision("highest")
    # cuDNN picks its fastest algorithm per shape, as our cudnnFind-based convolutions do.
    torch.backends.cudnn.benchmark = True
    check_lrn()

    device = torch.device(args.device)
    common = {"torch": torch.__version__, "device": args.device,
              "gpu": torch.cuda.get_device_name(device) if args.device == "cuda" else None,
              "batch": args.batch, "steps": args.steps, "warmup": args.warmup, "tf32": False}
    for mode in args.modes.split(","):
        print(json.dumps({"mode": mode, **common, **run_mode(mode, args, device)}), flush=True)


if __name__ == "__main__":
    main()
