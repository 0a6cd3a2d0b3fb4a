"""Local tooling: stand-ins for external services, used by tests, the benchmark and the demo."""
