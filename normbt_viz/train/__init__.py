"""Training: the losses (BT, NormBT and the alternatives), the loop, preflight checks, and the pure per-pair
diagnostics the loop calls.

May import `data` and `model`; writes only through the `RunDir` it is handed.
"""
