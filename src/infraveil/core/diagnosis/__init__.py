"""The diagnosis engine: facts about a failed instance in, findings out."""
