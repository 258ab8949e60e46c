"""Channel files → Channels and Slots; the planner lists every PlannedAiring; catch-up decides what a restart airs."""
