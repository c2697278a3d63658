"""`make sam-local`: the built artifact in Lambda-like containers against the local stack (see run.py)."""
