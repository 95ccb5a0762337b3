"""Phenology, risk and yield/grade/harvest-week forecasts (vectorised numpy over all orchards)."""
