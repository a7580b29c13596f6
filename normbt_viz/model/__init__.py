"""Models: backbones and the h they produce, tokenization and the on-disk feature caches, the reward model
(score head and the scopes that decide what trains), and export to a standard sequence classifier.

May import `data` (to render conversations) and the bottom modules (`errors`, `spec`, `numeric`); never knows
where runs live.
"""
