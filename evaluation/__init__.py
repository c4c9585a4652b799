"""The st-gloss evaluation suite: benchmark runner, profiles, aggregator, sweeps and their results.

Not part of the installed package: it imports ``st_gloss`` and is never imported by it. Run its
scripts from the repository root, e.g. ``python -m evaluation.benchmarks.runner --profile cpu --list``.
The evaluation *library* (kNN, silhouette, probe, MTEB, evaluators) is ``st_gloss.evaluation``.
"""
