"""Experiments built from many runs, each written as a folder: the reproducible evidence report (`report`),
which trains every arm over seeds through `runs/`, reads them through `analysis/` and scores them through
`evals/`, and the `compare` command's comparison folder (`compare`).
"""
