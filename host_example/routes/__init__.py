"""The host's pre-enhancement endpoints, one blueprint per area."""
