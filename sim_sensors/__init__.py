"""Simulated orchard gateways: weather/soil physics, faults, offline buffering, three wire formats."""
