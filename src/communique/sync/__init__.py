"""Synchronisation with peer nodes over TAXII 2.1: pull, push, their schedule and their state."""
