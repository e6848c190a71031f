"""Files users own: the network disk (disk.py) and the model market (market.py)."""
