"""Signed provenance: the node's Ed25519 key, and the signatures objects carry between nodes."""
