#!/usr/bin/env python3
"""Markdown tables from `pevm-bench bench --json` output (one JSON object per line).

Usage: scripts/bench_tables.py bench-results/gigagas.jsonl [THREADS]
"""
import json
import math
import sys


def main():
    path = sys.argv[1]
    threads = sys.argv[2] if len(sys.argv) > 2 else "2"
    rows = [json.loads(line) for line in open(path) if line.strip()]
    rows = [r for r in rows if "error" not in r]
    print(f"| block | txs | gas | serial ms | 1 thread ms (overhead) | {threads} threads ms "
          f"| speedup | bound | efficiency | re-exec | sim 8/16/32 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        one = r["parallel_ms"].get("1")
        overhead = f"{one:.1f} ({one / r['serial_ms'] - 1:+.0%})" if one else "-"
        sim = "/".join(f"{r['sim_speedup'][w]:.1f}" for w in ("8", "16", "32"))
        print(f"| {r['block']} | {r['txs']} | {r['gas_used'] / 1e6:.1f}M | {r['serial_ms']:.1f} "
              f"| {overhead} | {r['parallel_ms'][threads]:.1f} | {r['speedup'][threads]:.2f} "
              f"| {r['bound'][threads]:.2f} | {r['efficiency'][threads]:.2f} "
              f"| {r['re_executions'][threads]} | {sim} |")
    big = [r for r in rows if r["txs"] >= 50]
    if big:
        geo = lambda key: math.exp(sum(math.log(max(r[key][threads], 1e-9)) for r in big) / len(big))
        print(f"\nBlocks with at least 50 transactions: {len(big)}; geometric mean at {threads} "
              f"threads: speedup {geo('speedup'):.3f}, efficiency {geo('efficiency'):.3f}.")


if __name__ == "__main__":
    main()
