"""The demo's sample contacts and do-not-call list, shipped as package data.

``vaani-campaigns demo`` finds them with ``importlib.resources.files("sample_data")``, so the
demo works from a plain ``pip install .`` run from any directory. README.md says what is in
them.
"""
