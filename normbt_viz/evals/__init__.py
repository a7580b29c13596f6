"""Benchmark scoring: a saved reward model scored on RewardBench v1, RewardBench 2 and RM-Bench exactly as
upstream's code scores them, with per-example contributions so two runs' scores can be compared pair by pair.

`scoring` is the one interface (load, score, write beside the run); `rewardbench`, `rewardbench2` and `rmbench`
hold each benchmark's own rules. Performance scripts are elsewhere: the top-level `benchmarks/` folder.
"""
