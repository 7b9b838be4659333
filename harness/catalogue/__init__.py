"""Scenarios: the catalogue in fixtures/pipelines, KFP's own E2E corpus, and the local kfp.local oracle.

Scenario files (`fixtures/pipelines/*.py`) take their whole vocabulary from this package:
`from harness.catalogue import ScenarioSpec, component, artifact, text_digest`.
"""

from harness.catalogue.scenarios import ScenarioSpec, artifact, component, text_digest

__all__ = ["ScenarioSpec", "artifact", "component", "text_digest"]
