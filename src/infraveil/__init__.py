"""infraveil: run the services of one host, health-check them, and explain every failure."""

__version__ = "0.1.0"
