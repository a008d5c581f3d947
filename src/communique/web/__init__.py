"""The HTTP face of a node: ``create_app(settings)`` and thin routes."""
