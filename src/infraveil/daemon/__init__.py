"""The agent: one event queue, one owner of state; feeds the core and executes its actions."""
