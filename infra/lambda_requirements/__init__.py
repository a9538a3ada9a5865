"""Per-function pinned requirements and the script that compiles them."""
