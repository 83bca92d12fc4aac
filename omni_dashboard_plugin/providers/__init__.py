"""The built-in providers, one module each."""
