#!/usr/bin/env python3
"""PyTorch peers of the segloss GPU check: the Generalized Dice loss + gradient
(softmax over channels, weights 1/G^2, smoothing 1e-5, as segloss computes it)
in PyTorch eager and torch.compile, on the volumes bench/gpu/check.cu times,
then one table with segloss's times from its JSON.

Rows: every class count segloss timed with softmax logits and uint8
labels at 256^3 and up, to 16 classes.

Layout: PyTorch's usual [1, C, D, H, W] logits and [1, D, H, W] int64 labels
(what a PyTorch user passes); segloss reads channels-last float32 logits and
uint8 labels. Timing: CUDA events around forward + backward, median of 10
after 3 warm-up runs (torch.compile's compilation happens in the warm-up).
"""
import argparse
import json
import statistics

import torch
import torch.nn.functional as F


def gdl(logits, labels, C):
    p = torch.softmax(logits, dim=1)
    r = F.one_hot(labels, C).permute(0, 4, 1, 2, 3).to(p.dtype)
    dims = (0, 2, 3, 4)
    G = r.sum(dims)
    P = p.sum(dims)
    I = (p * r).sum(dims)
    w = 1.0 / (G * G)
    w = torch.where(torch.isinf(w), torch.zeros_like(w), w)
    return 1.0 - (2.0 * (w * I).sum() + 1e-5) / ((w * (G + P)).sum() + 1e-5)


def time_ms(fn, logits, labels, C, reps=10, warm=3):
    times = []
    for i in range(warm + reps):
        x = logits.detach().requires_grad_(True)
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        a.record()
        loss = fn(x, labels, C)
        loss.backward()
        b.record()
        torch.cuda.synchronize()
        if i >= warm:
            times.append(a.elapsed_time(b))
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--check-json', required=True)
    ap.add_argument('--json')
    args = ap.parse_args()
    with open(args.check_json) as f:
        check = json.load(f)
    # segloss's rows with the same input: softmax logits and integer labels,
    # on the default kernels (not the C = 2 class-lane comparison rows)
    ours = {(t['side'], t['C']): t for t in check['timings']
            if t['loss'] == 'generalizedDice' and t.get('input', 'softmax logits, u8 labels') == 'softmax logits, u8 labels'
            and t['side'] >= 256 and t['C'] <= 16}
    compiled = torch.compile(gdl, dynamic=False)
    rows = []
    print(f"\nGeneralized Dice loss + gradient, softmax logits, on {torch.cuda.get_device_name()} "
          f"(PyTorch {torch.__version__}); copy bandwidth {check['copy_gbs']:.0f} GB/s")
    print('| volume | C | segloss ms | GB/s (% of copy) | PyTorch eager ms | torch.compile ms | vs eager | vs compile |')
    print('|---|---|---|---|---|---|---|---|')
    for (side, C), t in sorted(ours.items()):
        g = torch.Generator(device='cuda').manual_seed(side * 10 + C)
        logits = torch.randn((1, C, side, side, side), device='cuda', generator=g) * 4
        labels = (torch.rand((1, side, side, side), device='cuda', generator=g) * C).long()
        eager = time_ms(gdl, logits, labels, C)
        comp = time_ms(compiled, logits, labels, C)
        rows.append({'side': side, 'C': C, 'segloss_ms': t['ms'], 'eager_ms': eager, 'compile_ms': comp})
        print(f"| {side}^3 | {C} | {t['ms']:.3f} | {t['gbs']:.0f} ({100 * t['gbs'] / check['copy_gbs']:.0f}%) | "
              f"{eager:.3f} | {comp:.3f} | {eager / t['ms']:.1f}x | {comp / t['ms']:.1f}x |")
        del logits, labels
        torch.cuda.empty_cache()
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'device': torch.cuda.get_device_name(), 'torch': torch.__version__, 'rows': rows}, f, indent=1)


if __name__ == '__main__':
    main()
