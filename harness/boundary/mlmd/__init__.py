"""ML Metadata (MLMD): where KFP v2 keeps task outputs. See reader.py for what is read and why."""

from harness.boundary.mlmd.reader import MlmdArtifact, MlmdError, MlmdExecution, MlmdReader

__all__ = ["MlmdArtifact", "MlmdError", "MlmdExecution", "MlmdReader"]
