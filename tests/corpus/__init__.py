"""The crash-log corpus: real failures from public bug reports, and how to score the engine."""
