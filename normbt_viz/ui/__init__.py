"""Streamlit helpers for the app: the only part of the package that imports streamlit."""
