"""SpiNNaker backend (placeholder while building)."""
