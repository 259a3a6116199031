"""One module per public source. Each defines a `Source` subclass (see pipelines.base) and registers it
in pipelines.registry.SOURCES."""
