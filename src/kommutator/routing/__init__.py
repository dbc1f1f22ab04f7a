"""Routing: which agent takes a waiting conversation (the engine), queue hours and what customers are told."""
