"""photosim's speed and memory benchmarks, kept out of the installed package.

Run from the repository root: ``python -m benchmarks [--quick] [--only B1,B4] [--out DIR]``
(:mod:`benchmarks.suite`); ``python benchmarks/models.py`` measures each backbone's throughput.
Results of the last full run: ``benchmarks/RESULTS.md`` and ``benchmarks/bench.json``.
"""
