"""npztui: inspect, check, plot and tag NumPy .npz results from a terminal."""

__version__ = "0.1.0"
