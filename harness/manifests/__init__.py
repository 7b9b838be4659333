"""Helpers over Kubernetes objects shared by every stage: label selectors, TLS certificate checks."""
