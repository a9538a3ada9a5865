"""One construct per concern (data lake, state tables, kill-switch, functions, schedules)."""
