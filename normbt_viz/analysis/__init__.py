"""Analysis over finished or running runs: statistics with intervals, comparisons across arms and seeds, outlier
views, projections (PCA/UMAP), the evidence report, benchmark scoring (RewardBench v1 and 2, RM-Bench) and the
Learn page's toy.

Pure functions over arrays, DataFrames and run directories. May import everything below it (data, model, train,
runs); it starts training only through `runs`, never by calling the trainer.
"""
