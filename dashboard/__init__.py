"""The Streamlit dashboard. It imports backend services only: never TensorFlow, SQLAlchemy, models or db."""
