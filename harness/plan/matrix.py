"""The CI job matrix, rendered from the config: one live job per (variant, mode).

GitHub workflows read it through `kfp-conformance matrix` (a `fromJSON` strategy), so the matrix
covers exactly what `fixtures/variants.yaml` declares and a new variant or mode needs no YAML edit.
"""

from __future__ import annotations

from typing import Any

from harness.config import Config
from harness.models import instance_key


def job_matrix(config: Config, *, variants: list[str] | None = None, modes: list[str] | None = None,
               tags: list[str] | None = None) -> dict[str, Any]:
    """`variants` may name instances (`central-driver:pr`): a job each, with the entry's driver kind and `key`,
    the instance name where ':' is not allowed (artifact names, image tags)."""
    chosen_variants = [config.variant(v).name for v in (variants or list(config.variants))]
    chosen_modes = [config.mode(m).name for m in (modes or list(config.modes))]
    include = [
        {
            "variant": variant,
            "key": instance_key(variant),
            "mode": mode,
            "job": f"{variant}.{mode}",
            "driver_kind": config.variant(variant).driver.kind,
            "prerequisites": " ".join(config.mode(mode).prerequisites),
            "tags": ",".join(tags or []),
        }
        for mode in chosen_modes
        for variant in dict.fromkeys(chosen_variants)
    ]
    return {"include": include}
