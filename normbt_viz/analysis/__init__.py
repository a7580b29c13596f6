"""Analysis of finished or running runs: statistics with intervals, comparisons across arms and seeds,
outlier views, projections (PCA/UMAP) and the Learn page's toy.

Functions over arrays, DataFrames and run directories, read-only: nothing here trains (no `train`, no
`runs.launcher`), and nothing writes into a run except through `RunDir`.
"""
