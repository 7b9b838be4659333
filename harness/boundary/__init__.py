"""The only code that touches the world: subprocesses, the Kubernetes API, the KFP API, ML Metadata; redaction and the one retry policy."""
