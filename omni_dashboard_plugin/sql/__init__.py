"""The base SQL layer: Omni's tables as the plugin reads them, portable constructs, and
the one-snapshot transaction. It imports nothing else of the plugin but the slot grid."""
