"""NormBT Viz: see how a Bradley-Terry reward model learns from preference pairs, and how NormBT
rebalances its updates. The core package never imports Streamlit; the app lives in `app.py` and `pages/`."""

__version__ = "0.1.0"
