"""End-to-end tests against a real kube-apiserver and the real Pulumi CLI (marker `e2e`)."""
