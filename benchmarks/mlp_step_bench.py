# ruff: noqa: E402, E501  (imports follow the environment set-up on purpose)
"""Per-step time of an MLP Adam step at several sizes, 1 vs 2 threads, interleaved (PASSIVE set before torch)."""
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch
from torch import nn

sizes = [(16, [64, 128, 64, 16]), (256, [64, 256, 128, 32]), (256, [784, 512, 256, 64]), (1024, [784, 1024, 512, 64])]
torch.manual_seed(0)
for batch, widths in sizes:
    layers = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    m = nn.Sequential(*layers[:-1])
    opt = torch.optim.Adam(m.parameters())
    x = torch.randn(batch, widths[0])
    work = batch * sum(a * b for a, b in zip(widths[:-1], widths[1:]))
    res = {1: [], 2: []}
    for _rep in range(4):
        for t in (1, 2):
            torch.set_num_threads(t)
            n = max(5, int(3e8 / work))
            t0 = time.perf_counter()
            for _ in range(n):
                loss = m(x).pow(2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
            res[t].append((time.perf_counter() - t0) / n * 1e3)
    med = {t: sorted(v)[len(v) // 2] for t, v in res.items()}
    print(f"batch {batch} widths {widths} work {work/1e6:.2f}M MAC/step: 1 thread {med[1]:.3f} ms, 2 threads {med[2]:.3f} ms, ratio 2/1 {med[2]/med[1]:.2f}")
