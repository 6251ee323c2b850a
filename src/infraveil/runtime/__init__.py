"""OS adapters: spawning in a process group, log capture, exit watching, signals, /proc."""
