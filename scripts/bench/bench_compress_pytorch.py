#!/usr/bin/python3
"""PyTorch-eager baseline for `quecc bench compress`: the same projector (QueCC compressor + mlp2x_gelu) at the
paper's dimensions, timed the same way (median of N after one warm-up; forward under no_grad; forward+backward of
mean(out²)). Run with Debian's python3-torch on the same machine:

    /usr/bin/python3 scripts/bench/bench_compress_pytorch.py [--batch 16] [--tokens 36 1] [--iterations 3]

Debian's python3-torch calls the system libblas.so.3, which defaults to the netlib reference BLAS (~7 GFLOP/s
here). For a baseline with an optimised BLAS without changing the system, unpack OpenBLAS and point the loader at it:

    apt-get download libopenblas0-pthread && dpkg -x libopenblas0-pthread_*.deb /tmp/openblas
    LD_LIBRARY_PATH=/tmp/openblas/usr/lib/x86_64-linux-gnu/openblas-pthread /usr/bin/python3 scripts/bench/bench_compress_pytorch.py

GFLOP/s use the same analytic count as QueCC.Model.Compression.Flops (multiply-add = 2; Linear, depthwise
conv, attention products; input gradients only where the input needs one).
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(2)
W, M, T, D, G, HEADS = 1024, 4096, 4096, 4096, 24, 8


def mlp(i, o):
    return nn.Sequential(nn.Linear(i, o), nn.GELU(), nn.Linear(o, o), nn.LayerNorm(o, eps=1e-6))


class Quecc(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.k, self.h = k, G // k
        self.text_projection = nn.Sequential(nn.Linear(T, W), nn.LayerNorm(W, eps=1e-6))
        self.q_proj, self.k_proj, self.v_proj = mlp(W, W), mlp(M, W), mlp(M, W)
        self.q_downsample = nn.Conv2d(W, W, k, stride=k, groups=W)
        self.clip_attn = nn.MultiheadAttention(W, HEADS, batch_first=True)

    def forward(self, x, xm, t):
        b, h, k = x.shape[0], self.h, self.k
        x = x + self.text_projection(t)
        q = self.q_downsample(self.q_proj(x).transpose(1, 2).reshape(b, W, G, G)).flatten(2).transpose(1, 2)
        win = lambda z: z.reshape(b, h, k, h, k, W).permute(0, 1, 3, 2, 4, 5).reshape(b * h * h, k * k, W)
        out, _ = self.clip_attn(q.reshape(b * h * h, 1, W), win(self.k_proj(xm)), win(self.v_proj(xm)), need_weights=False)
        return out.reshape(b, h * h, W)


def flops(v):
    n, kk, ks = G * G, (G // int(v ** 0.5)) ** 2, (G // int(v ** 0.5)) ** 2
    fwd = bwd = 0.0
    def add(f, inp):
        nonlocal fwd, bwd
        fwd += f; bwd += f * (2 if inp else 1)
    add(2 * T * W, False)                       # text_projection
    fwd += 4 * n * W * W; bwd += 8 * n * W * W  # q_proj (input needs grad via text)
    add(2 * v * W * ks, True)                   # q_downsample
    for _ in range(2):                          # k_proj, v_proj
        fwd += 2 * n * (M * W + W * W); bwd += 2 * n * (M * W + 2 * W * W)
    add(2 * v * W * W + 4 * n * W * W + 4 * v * kk * W + 2 * v * W * W, True)  # clip_attn
    add(2 * v * W * D, True); add(2 * v * D * D, True)  # projector MLP
    return fwd, bwd


def matmul_gflops(n=2048, repeats=3):
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        s = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - s)
    return 2 * n ** 3 / best / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--tokens", type=int, nargs="+", default=[36, 1])
    ap.add_argument("--iterations", type=int, default=3)
    a = ap.parse_args()
    print(f"PyTorch {torch.__version__} eager, {torch.get_num_threads()} threads, batch {a.batch}, median of {a.iterations}")
    for v in a.tokens:
        torch.manual_seed(0)
        proj = nn.Sequential(Quecc(G // int(round(v ** 0.5))), nn.Linear(W, D), nn.GELU(), nn.Linear(D, D))
        x, xm, t = torch.randn(a.batch, G * G, W), torch.randn(a.batch, G * G, M), torch.randn(a.batch, 1, T)
        run = lambda: proj[3](proj[2](proj[1](proj[0](x, xm, t))))

        def fwd():
            with torch.no_grad():
                s = time.perf_counter(); run(); return time.perf_counter() - s

        def fwd_bwd():
            proj.zero_grad(set_to_none=True)
            s = time.perf_counter(); run().square().mean().backward(); return time.perf_counter() - s

        ceiling_before = matmul_gflops()
        fwd()
        tf = statistics.median(fwd() for _ in range(a.iterations)) / a.batch
        fwd_bwd()
        tb = statistics.median(fwd_bwd() for _ in range(a.iterations)) / a.batch
        ceiling = max(ceiling_before, matmul_gflops())
        ff, fb = flops(v)
        g = (ff + fb) / tb / 1e9
        print(f"quecc V={v:3d}: fwd {tf * 1e3:8.1f} ms/img {ff / tf / 1e9:7.1f} GFLOP/s | fwd+bwd {tb * 1e3:8.1f} ms/img {g:7.1f} GFLOP/s"
              f" | matmul {ceiling:6.1f} GFLOP/s ({100 * g / ceiling:.0f}%)")
    print("matmul: best 2048^3 float32 matmul, measured before and after each row")


if __name__ == "__main__":
    main()
