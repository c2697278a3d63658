"""Developer scripts: the layer's resolved requirements and `make sam-local` (none of it ships in the layer)."""
