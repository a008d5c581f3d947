"""Communiqué: a federated cyber-defence exchange for nations (STIX 2.1 over TAXII 2.1)."""

__version__ = "0.1.0"
