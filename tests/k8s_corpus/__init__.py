"""The Kubernetes corpus: real pod failures from public bug reports, and how to score the doctor."""
