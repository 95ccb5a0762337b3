"""Reference data every module reads: townships, cooperatives, households, growers, orchards, devices."""
