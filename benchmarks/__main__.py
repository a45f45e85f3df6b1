"""``python -m benchmarks``: run the speed and memory suite B1-B12, write bench.json and RESULTS.md.

Speed goals live here, never in timed tests. Run from the repository root with photosim
installed (``pip install -e .``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks import suite

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run the suite, print the table; the exit status is 1 if any failed."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="small data sets, under a minute (CI smoke; figures not meaningful)")
    parser.add_argument("--out", default=str(HERE), metavar="DIR",
                        help="folder for bench.json and RESULTS.md (default: benchmarks/)")
    parser.add_argument("--only", metavar="B1,B2,...", help="run only these benchmarks")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="inference device of B1 and B8 (default cpu)")
    parser.add_argument("--work", metavar="DIR",
                        help="where to generate the data sets (default: the system temp folder)")
    parser.add_argument("--archive-vectors", type=int, metavar="N",
                        help="B12's compressed index size (default 1,000,000; 10,000,000 for "
                             "the 10M goal: about 15 minutes and 5 GB of disk)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    only = suite.BENCHMARKS
    if args.only:
        only = tuple(name.strip().upper() for name in args.only.split(",") if name.strip())

    def log(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    command = "python -m benchmarks " + " ".join(sys.argv[1:] if argv is None else argv)
    try:
        report = suite.run(Path(args.out), quick=args.quick, only=only, device=args.device,
                           work=Path(args.work) if args.work else None,
                           command=command.strip(), log=log,
                           archive_vectors=args.archive_vectors)
    except suite.BenchError as exc:
        print(f"benchmarks: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print((Path(args.out) / "RESULTS.md").read_text())
    return 1 if any("error" in v for v in report["benchmarks"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
