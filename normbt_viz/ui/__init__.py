"""The app's side: pure figure builders (DataFrame in, plotly Figure out) and selection helpers, plus the
Streamlit helpers (`common`, `state`), the only modules of the package that import streamlit.

May import every other part; nothing imports it.
"""
