"""Data: synthetic worlds (``worlds``), and later the real-format loaders."""
