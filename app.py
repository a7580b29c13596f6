"""NormBT Viz: the Streamlit entry point. Sets the layout and routes to the pages in pages/.

    streamlit run app.py
"""

import streamlit as st

from normbt_viz.ui.state import init_state

st.set_page_config(page_title="NormBT Viz", page_icon="⚖️", layout="wide")
init_state()

# The default page is served at "/" only; a hidden twin answers at /train too, so a bookmarked or shared
# /train link does not read "Page not found".
TRAIN = "pages/1_Train.py"
pages = {
    "Run": [
        st.Page(TRAIN, title="Train", icon=":material/rocket_launch:", url_path="home", default=True),
        st.Page(TRAIN, title="Train", icon=":material/rocket_launch:", url_path="train", visibility="hidden"),
        st.Page("pages/2_Data.py", title="Data", icon=":material/table_view:", url_path="data"),
    ],
    "Inspect": [
        st.Page("pages/3_Runs.py", title="Runs", icon=":material/show_chart:", url_path="runs"),
        st.Page("pages/4_Gradients.py", title="Gradients", icon=":material/explore:", url_path="gradients"),
        st.Page("pages/5_Embeddings.py", title="Embeddings", icon=":material/scatter_plot:", url_path="embeddings"),
        st.Page("pages/6_Pairs.py", title="Pairs", icon=":material/search:", url_path="pairs"),
        st.Page("pages/7_Audit.py", title="Audit", icon=":material/fact_check:", url_path="audit"),
    ],
    "Understand": [
        st.Page("pages/8_Learn.py", title="Learn", icon=":material/school:", url_path="learn"),
    ],
}
st.navigation(pages).run()
