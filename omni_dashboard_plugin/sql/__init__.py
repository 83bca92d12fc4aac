"""The base SQL layer: Omni's tables as the plugin reads them, portable constructs, the
one-snapshot transaction and the client-side deadline on an engine's calls. It imports
nothing else of the plugin but the slot grid."""
