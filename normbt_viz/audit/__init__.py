"""The dataset audit: every pair of a preference dataset scored out of fold for likely label errors, with
outlier flags and a cleaned copy.

`spec` declares the audit's options (flags, help, ranges), `scoring` is the algorithm (pure functions on
arrays and DataFrames), `summary` writes its Markdown, `auditdir` owns an audit folder's files (as `RunDir`
owns a run's) and `run` ties them together: load, featurise, score, write.
"""
