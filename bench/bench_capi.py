"""Per-batch host overhead through the C API against the C loop floor: the `tiny` sample in the
emulator's fast mode (no modelled time), so what is left is host work per batch.

    python bench/bench_capi.py [BATCHES]

Builds examples/capi/fxpipe.c and bench/acl_loop.c; runs fxpipe (1 and 2 native threads, serial
and overlap executors), the Python executor's run(), and the C loop, all on the same sample.
"""
import os
import re
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    batches = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    os.environ["FASTEXEC_BACKEND"] = "emulator"
    os.environ["FASTEXEC_EMU_FAST"] = "1"
    import numpy as np

    import fastexec
    from fastexec import emulator

    with tempfile.TemporaryDirectory() as tmp:
        ext = Path(tmp) / ("fxpipe" + sysconfig.get_config_var("EXT_SUFFIX"))
        subprocess.run(["cc", "-std=c11", "-O2", "-shared", "-fPIC", f"-I{sysconfig.get_paths()['include']}",
                        f"-I{fastexec.get_include()}", str(ROOT / "examples/capi/fxpipe.c"), "-o", str(ext), "-pthread"], check=True)
        loop = Path(tmp) / "acl_loop"
        subprocess.run(["cc", "-std=c11", "-O2", *emulator.cflags(), str(ROOT / "bench/acl_loop.c"), "-o", str(loop),
                        *emulator.libs()], check=True)
        sys.path.insert(0, tmp)
        import fxpipe

        out = subprocess.run([str(loop), emulator.sample_model("tiny"), str(batches), "2"], capture_output=True, text=True,
                             check=True).stdout
        c_loop = float(re.search(r"\(([0-9.]+) batches/s\)", out).group(1))
        print(f"C loop (ACL directly, one stream, depth 2): {c_loop:9.0f} batches/s  {1e9 / c_loop:8.0f} ns/batch")
        with fastexec.Device(0) as dev, fastexec.Model(emulator.sample_model("tiny"), device=dev) as model:
            x = np.ones((batches, 16), np.float32)
            y = np.empty((batches, 16), np.float32)
            for mode in ("serial", "overlap"):
                with fastexec.Executor(model, mode=mode) as ex:
                    for threads in (1, 2):
                        t0 = time.perf_counter()
                        fxpipe.run(ex, [x], [y], batches, threads=threads)
                        rate = batches / (time.perf_counter() - t0)
                        print(f"C API, {mode:7} executor, {threads} thread(s):   {rate:9.0f} batches/s  {1e9 / rate:8.0f} ns/batch"
                              f"  ({rate / c_loop:.2f} of the C loop)")
                    t0 = time.perf_counter()
                    ex.run([x], out=[y])
                    rate = batches / (time.perf_counter() - t0)
                    print(f"Python run(), {mode:7} executor:        {rate:9.0f} batches/s  {1e9 / rate:8.0f} ns/batch"
                          f"  ({rate / c_loop:.2f} of the C loop)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
