"""`python -m backend.serving`: the inference server alone (as `modeldeck serve`)."""

from backend.serving.server import main

main()
