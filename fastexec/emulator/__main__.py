"""python -m fastexec.emulator [--cflags] [--libs] | --library | --dvpp-library | --include | --samples"""
import argparse
import sys

from . import cflags, dvpp_library_path, include_dir, libs, library_path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fastexec.emulator",
        description="Where the bundled AscendCL emulator is, and how to build a C or C++ program against it "
                    "(--cflags and --libs may be given together, like pkg-config).",
    )
    parser.add_argument("--cflags", action="store_true", help="compiler flags (include directory)")
    parser.add_argument("--libs", action="store_true", help="linker flags: -L<dir> -lascendcl (-lacl_dvpp resolves there too)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--library", action="store_true", help="path of the emulator's libascendcl.so")
    group.add_argument("--dvpp-library", action="store_true", help="path of the emulator's libacl_dvpp.so")
    group.add_argument("--include", action="store_true", help="path of the include directory")
    group.add_argument("--samples", action="store_true", help="bundled sample models and their paths")
    args = parser.parse_args(argv)
    flags = args.cflags or args.libs
    others = args.library or args.dvpp_library or args.include or args.samples
    if flags == bool(others):
        parser.error("give --cflags and/or --libs, or one of --library, --dvpp-library, --include, --samples")
    try:
        if flags:
            print(" ".join((cflags() if args.cflags else []) + (libs() if args.libs else [])))
        elif args.library:
            print(library_path())
        elif args.dvpp_library:
            print(dvpp_library_path())
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
