"""What the trainer and the serving side share: the classifier network, title encoding, the checkpoint format.

Imports neither Kafka nor the consumer nor the trainer.
"""
