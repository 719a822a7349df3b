"""Domain logic of Grid Event Monitor. Nothing in here imports Dash, Flask or anything above it."""
