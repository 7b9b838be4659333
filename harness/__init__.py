"""kfp-conformance: a library that compares Kubeflow Pipelines driver variants.

No module in this package imports pytest: the pytest plugin (``pytest_kfp_conformance``) and the CLI
(``harness.cli``) are thin layers over these calls.
"""

from pathlib import Path

__version__ = "0.1.0"
# Package data (JSON schemas, templates, built-in roles) lives beside this file whatever module reads it.
PACKAGE_DIR = Path(__file__).resolve().parent
SCHEMAS_DIR = PACKAGE_DIR / "schemas"
DATA_DIR = PACKAGE_DIR / "data"
