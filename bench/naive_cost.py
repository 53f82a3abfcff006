"""The naive loop against the executor as the emulator's allocation cost grows.

    python bench/naive_cost.py [--alloc-us 0,10,50,100,200] [--samples resnet50-int8,balanced] [--batches 500]

fastexec.naive_run allocates and frees every device buffer of every batch (as ACLLite and pyACL
samples do) and copies from pageable memory; the executor allocates once and copies from pinned
staging. The emulator has no published figure for aclrtMalloc / aclrtFree, so its `alloc_us`
(cost of one allocation and of one free; FASTEXEC_EMU_ALLOC_US) defaults to 0; this sweeps it.
Each (sample, alloc_us) runs in its own process (bench_executor.py's measurement: real modelled
durations, the sample's profile), so every ratio in a row comes from one run.
"""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROFILES = {"balanced": "slow-link"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alloc-us", default="0,10,50,100,200")
    parser.add_argument("--samples", default="resnet50-int8,balanced")
    parser.add_argument("--batches", type=int, default=500)
    parser.add_argument("--depth", type=int, default=4)
    args = parser.parse_args(argv)
    print(f"{'sample':<15}{'alloc_us':>9}{'naive/s':>10}{'serial/s':>10}{'overlap/s':>11}{'serial x':>9}{'overlap x':>10}")
    for sample in args.samples.split(","):
        for alloc in args.alloc_us.split(","):
            env = {k: v for k, v in os.environ.items() if not k.startswith("FASTEXEC_EMU_")}
            env.update(FASTEXEC_BACKEND="emulator", FASTEXEC_EMU_ALLOC_US=alloc)
            if sample in PROFILES:
                env["FASTEXEC_EMU_PROFILE"] = PROFILES[sample]
            out = subprocess.run([sys.executable, str(HERE / "bench_executor.py"), "--measure", sample, "--batches", str(args.batches),
                                  "--depths", str(args.depth), "--modes", "serial,overlap"],
                                 env=env, check=True, capture_output=True, text=True).stdout
            res = json.loads(out)
            naive = res["naive_samples_per_s"]
            ser = res["executor"][f"serial:{args.depth}"]["samples_per_s"]
            ovl = res["executor"][f"overlap:{args.depth}"]["samples_per_s"]
            print(f"{sample:<15}{alloc:>9}{naive:>10.1f}{ser:>10.1f}{ovl:>11.1f}{ser / naive:>9.2f}{ovl / naive:>10.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
