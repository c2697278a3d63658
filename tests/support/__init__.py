"""Shared test support: the template's own resource definitions, moto, and loopback servers."""
