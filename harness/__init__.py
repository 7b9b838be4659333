"""kfp-conformance: a library that compares Kubeflow Pipelines driver variants.

No module in this package imports pytest: the pytest plugin (``pytest_kfp_conformance``) and the CLI
(``harness.cli``) are thin layers over these calls.
"""

__version__ = "0.1.0"
