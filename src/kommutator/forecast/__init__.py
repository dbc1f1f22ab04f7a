"""Staffing forecast: arrivals per half hour, handle time, and the agents a queue's service level needs."""
