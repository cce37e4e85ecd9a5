"""The HTTP serving endpoint: the registry's champion behind ONNX Runtime, with micro-batching,
Prometheus metrics, a request log for monitoring, and hot switching when the champion changes."""
