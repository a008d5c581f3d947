"""Pure TAXII 2.1 vocabulary: media types, filters, cursors and resources. No I/O."""
