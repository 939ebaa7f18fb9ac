"""Training side of the project: sample data, a tiny test base, fine-tuning and publishing."""
