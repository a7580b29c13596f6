"""Experiments built from many runs: the reproducible evidence report, which trains every arm over seeds
through `runs/`, reads them through `analysis/` and scores them through `evals/`.
"""
