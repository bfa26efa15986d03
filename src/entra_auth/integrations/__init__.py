"""Thin adapters that translate a web framework's requests and responses for the core."""
