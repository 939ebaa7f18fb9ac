"""The model side of the consumer: the classifier definition, checkpoints, and the runtime."""
