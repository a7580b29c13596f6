"""Training: the `Trainer` (`loop`) and its parts — the pairs, the step plan and the training state (`state`),
evaluation (`evaluation`), checkpoints (`checkpoint`), the data-parallel processes and the main-process writer
(`processes`) — the losses (BT, NormBT and the alternatives), preflight checks, and the pure per-pair
diagnostics the loop calls.

May import `data` and `model`; writes only through the `RunDir` it is handed, on the main process only.
"""
