"""The pure core: no clock, no disk, no network, no processes. `now` is always an argument."""
