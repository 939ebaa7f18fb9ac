"""The streaming service: Kafka source -> micro-batcher -> classifier -> Kafka sink."""
