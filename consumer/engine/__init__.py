"""The categorizer engine, one stage per module, in the order a record meets them.

Kafka thread: `bootstrap` (topics) -> `intake` (poll's messages to validated records) ->
`tokenize` (ids for the model of the moment) -> `reorder` (a slot in its partition's
queue) -> the length grouper (`consumer/batcher.py`) -> `scheduler` (hands batches to
the device worker, `consumer/classify/device.py`, and collects them) -> `reorder` (heads
released in consume order) -> `output` (the enriched event) or `dead_letters` ->
`consumer/delivery.py` (produce, acknowledge, commit). Beside them: `breaker` (a model
or tokenizer that fails on everything stops the member), `rebalance` (assign, revoke,
lost) and `reporting` (counters, lag). `consumer/service.py` wires them together.
"""
