"""One root error for the service; each names what a user must fix."""


class ProdcatError(Exception):
    """Root of every error the project raises on purpose."""


class ConfigError(ProdcatError):
    """Configuration is missing or inconsistent."""


class CheckpointError(ProdcatError):
    """A checkpoint or registry entry is missing, corrupt, or does not verify."""


class DeliveryError(ProdcatError):
    """The broker did not acknowledge an output record; its offset must not be committed."""


class BrokerError(ProdcatError):
    """The Kafka cluster could not be reached or refused an operation."""


class InferenceUnavailable(ProdcatError):
    """The model fails on every title, not on a few: the device or the checkpoint is broken."""
