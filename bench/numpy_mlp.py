#!/usr/bin/env python3
"""Reference for bench/train-speed.bench.ts: a hand-written numpy MLP training loop.

Same network and optimizer as the tfjs bench: dense 784-256-128-10 (relu, relu, softmax), sparse
categorical cross-entropy, Adam (lr 1e-3, beta1 0.9, beta2 0.999, eps 1e-7 as tfjs uses), batch
128, float32 throughout, on the rows the bench passes in (raw little-endian float32 x [rows, 784]
and int32 y [rows]). One BLAS thread: the bench compares against one wasm thread.

Prints one JSON line: {"samples_per_s": median over repeats, "runs": [...], "loss_first", "loss_last"}.
With --peak instead: {"gemm_gflops": ...}, the float32 1024x1024x1024 matmul rate on the same one thread.
"""
import os

# Before numpy loads its BLAS: one thread, whatever the environment says.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ[var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

SIZES = (784, 256, 128, 10)


def glorot(rng, fan_in, fan_out):
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32)


class Adam:
    def __init__(self, params, lr=1e-3, b1=0.9, b2=0.999, eps=1e-7):
        self.lr, self.b1, self.b2, self.eps, self.t = lr, b1, b2, eps, 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, params, grads):
        self.t += 1
        c1 = 1 - self.b1 ** self.t
        c2 = 1 - self.b2 ** self.t
        for p, g, m, v in zip(params, grads, self.m, self.v):
            m *= self.b1
            m += (1 - self.b1) * g
            v *= self.b2
            v += (1 - self.b2) * g * g
            p -= self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)


def train_step(params, opt, x, y):
    w1, b1, w2, b2, w3, b3 = params
    n = x.shape[0]
    z1 = x @ w1 + b1
    h1 = np.maximum(z1, 0)
    z2 = h1 @ w2 + b2
    h2 = np.maximum(z2, 0)
    logits = h2 @ w3 + b3
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    p = e / e.sum(axis=1, keepdims=True)
    loss = -np.log(np.clip(p[np.arange(n), y], 1e-7, 1.0)).mean()
    d3 = p
    d3[np.arange(n), y] -= 1
    d3 /= n
    gw3, gb3 = h2.T @ d3, d3.sum(axis=0)
    d2 = (d3 @ w3.T) * (z2 > 0)
    gw2, gb2 = h1.T @ d2, d2.sum(axis=0)
    d1 = (d2 @ w2.T) * (z1 > 0)
    gw1, gb1 = x.T @ d1, d1.sum(axis=0)
    opt.step(params, [gw1, gb1, gw2, gb2, gw3, gb3])
    return float(loss)


def gemm_peak(repeats):
    a = np.random.default_rng(0).random((1024, 1024), dtype=np.float32)
    b = np.random.default_rng(1).random((1024, 1024), dtype=np.float32)
    a @ b  # warm-up
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        rates.append(2 * 1024 ** 3 / (time.perf_counter() - t0) / 1e9)
    return max(rates)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peak", action="store_true")
    ap.add_argument("--x")
    ap.add_argument("--y")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if args.peak:
        print(json.dumps({"gemm_gflops": gemm_peak(10)}))
        return
    if not args.x or not args.y:
        ap.error("--x and --y are required")
    x = np.fromfile(args.x, dtype="<f4").reshape(-1, SIZES[0])
    y = np.fromfile(args.y, dtype="<i4")
    rng = np.random.default_rng(1)
    params = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        params += [glorot(rng, fan_in, fan_out), np.zeros(fan_out, np.float32)]
    opt = Adam(params)
    batches = x.shape[0] // args.batch
    step = 0

    def run(count):
        nonlocal step
        losses = []
        for _ in range(count):
            i = (step % batches) * args.batch
            losses.append(train_step(params, opt, x[i:i + args.batch], y[i:i + args.batch]))
            step += 1
        return losses

    first = run(5)[0]  # warm-up
    runs = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        last = run(args.steps)[-1]
        runs.append(args.steps * args.batch / (time.perf_counter() - t0))
    print(json.dumps({"samples_per_s": statistics.median(runs), "runs": runs, "loss_first": first, "loss_last": last}))


if __name__ == "__main__":
    main()
