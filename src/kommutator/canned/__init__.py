"""Canned responses: saved replies agents insert with a shortcut such as /greet."""
