"""The agent's HTTP/JSON API on a Unix socket, and the small client the CLI uses."""
