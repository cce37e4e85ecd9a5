"""What ships: the ONNX model with its preprocessing, its parity check, latency, and registry entry."""
