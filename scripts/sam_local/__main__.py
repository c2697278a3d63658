"""`python -m scripts.sam_local` (make sam-local): see scripts/sam_local/run.py."""

from __future__ import annotations

from scripts.sam_local.run import main

main()
