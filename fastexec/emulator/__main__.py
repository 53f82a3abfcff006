"""python -m fastexec.emulator --cflags | --libs | --library | --include | --samples"""
import argparse
import sys

from . import cflags, include_dir, libs, library_path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fastexec.emulator",
        description="Where the bundled AscendCL emulator is, and how to build a C program against it.",
    )
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--cflags", action="store_true", help="compiler flags (include directory)")
    group.add_argument("--libs", action="store_true", help="linker flags for the emulator library")
    group.add_argument("--library", action="store_true", help="path of the emulator library")
    group.add_argument("--include", action="store_true", help="path of the include directory")
    group.add_argument("--samples", action="store_true", help="bundled sample models and their paths")
    args = parser.parse_args(argv)
    try:
        if args.cflags:
            print(" ".join(cflags()))
        elif args.libs:
            print(" ".join(libs()))
        elif args.library:
            print(library_path())
        elif args.include:
            print(include_dir())
        else:
            from .samples import SAMPLES, sample_path

            for name in SAMPLES:
                print(f"{name}\t{sample_path(name)}")
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
