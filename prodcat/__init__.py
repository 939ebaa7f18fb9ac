"""The `prodcat` command and the glue that runs the whole system on one machine."""
