"""Operations: what an operator sees of the proxy (health and readiness, Prometheus metrics,
access and process logs)."""
