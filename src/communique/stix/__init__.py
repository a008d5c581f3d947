"""Pure STIX 2.1: object validation and the 2.0 → 2.1 upgrade. No I/O, no web, no SQL."""
