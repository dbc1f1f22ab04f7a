"""The demo workspace."""
