"""The model side of the service: who owns the serving model, and the thread that runs it."""
