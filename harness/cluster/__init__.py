"""Cluster providers (kind, an existing kubeconfig context), the ownership ledger and image handling.

Nothing here imports pytest; `harness.live.session` and `pytest_kfp_conformance.live` sit on top.
"""
