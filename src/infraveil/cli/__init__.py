"""The command line: one module per verb; verbs return data, rendering is separate."""
