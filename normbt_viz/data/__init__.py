"""Preference data: where pairs come from and how they become one table.

Owns the sources (local files, compressed files, shard folders, `save_to_disk` folders, Hugging Face ids,
uploads), the layouts (`formats/`: files, the mapping language, plain text, conversations, judgments, lists
of answers), validation with one-line errors, the story of each load (`load_report`), the synthetic demo
generator and its text (`demo`, `demo_templates`), and the selection a run trains on (`run_data`). Imports only
`normbt_viz.errors` and `normbt_viz.spec` from the package.
"""
