"""Streamlit front end for sendplan (a thin layer over model.engine); run with `streamlit run app.py`."""

import streamlit as st

from model.io import load_scenario

st.set_page_config(page_title="sendplan", layout="wide")
resolved = load_scenario(None)
st.title("sendplan")
st.write(f"Scenario: {resolved.scenario.meta.name}")
