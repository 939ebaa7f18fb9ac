pytest_plugins = ["prodcat.testing"]
