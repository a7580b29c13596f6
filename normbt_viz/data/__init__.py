"""Preference data: where pairs come from and how they become one table.

Owns the sources (local files, `save_to_disk` folders, Hugging Face ids, uploads), the formats (explicit,
implicit, conversational, ShareGPT), validation with one-line errors, the synthetic demo generator, and the
selection a run trains on (`run_data`). Imports only `normbt_viz.errors` and `normbt_viz.spec` from the package.
"""
