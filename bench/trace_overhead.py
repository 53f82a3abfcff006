"""The cost of tracing: Executor.run throughput with the trace on and off, alternating in one
process, and the ratio on / off.

    python bench/trace_overhead.py [SAMPLE] [BATCHES] [--repeat N] [--fast]

Modelled timing by default (FASTEXEC_EMU_PROFILE as set, e.g. slow-link); --fast runs the
emulator in fast mode, where the device costs nothing and the ratio is the host's whole cost
per batch with and without the trace (the worst case).
"""
import argparse
import os
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sample", nargs="?", default="balanced")
    ap.add_argument("batches", nargs="?", type=int, default=400)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--fast", action="store_true", help="emulator fast mode (host cost only)")
    args = ap.parse_args()
    os.environ.setdefault("FASTEXEC_BACKEND", "emulator")
    os.environ["FASTEXEC_EMU_FAST"] = "1" if args.fast else "0"
    import numpy as np

    import fastexec
    from fastexec import emulator

    with fastexec.Executor(emulator.sample_model(args.sample)) as ex:
        B = ex.batch_size
        rng = np.random.default_rng(0)
        x = [rng.integers(0, 100, (B * args.batches,) + tuple(s.shape[1:])).astype(s.dtype) for s in ex.inputs]
        out = ex.run(x)                                   # warm-up, touches the outputs
        rates = {"off": [], "on": []}
        for _ in range(args.repeat):
            for state in ("off", "on"):
                if state == "on":
                    ex.start_trace(args.batches)
                t0 = time.perf_counter()
                ex.run(x, out=out)
                wall = time.perf_counter() - t0
                if state == "on":
                    ex.stop_trace()
                    assert len(ex.trace_records()["ticket"]) == args.batches
                rates[state].append(B * args.batches / wall)
    prof = emulator.profile()
    best = {k: max(v) for k, v in rates.items()}
    print(f"{args.sample}, {args.batches} batches x {args.repeat}, profile {prof['name']}"
          f"{' (fast mode)' if prof['fast'] else ''}")
    for k in ("off", "on"):
        print(f"  trace {k:<3} best {best[k]:10.1f} samples/s  (all: {', '.join(f'{r:.0f}' for r in rates[k])})")
    print(f"  ratio on/off (best of each): {best['on'] / best['off']:.3f}")


if __name__ == "__main__":
    main()
