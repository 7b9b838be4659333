"""No credential value from any tree, and no injected canary, reaches static.json or static.md.

The real CLI runs the static tier (standalone) with sidecar-plugin from the shared trees against a copy of
central-driver into which changed Secret values, a literal credential env value and credential ConfigMap
entries were injected: the changes must show as fingerprints ("value changed"), never as values.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import yaml

from harness.cli import main
from harness.config import load_config
from harness.static.credentials import is_credential_key, is_literal
from tests.conftest import VARIANTS

CANARIES = {
    "secret": "kfpc-canary-secret-9c41d2",
    "env": "kfpc-canary-env-5be077",
    "configmap": "kfpc-canary-cm-31aa90",
    # JWT-shaped (three base64url parts), under a key that says nothing
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJrZnBjLWNhbmFyeSJ9.c2lnbmF0dXJlLWthbmFyeS0xMjM0",
}
PIPELINE = Path("manifests/kustomize/base/pipeline")
SECRET = Path("manifests/kustomize/third-party/seaweedfs/base/seaweedfs/mlpipeline-minio-artifact-secret.yaml")


def _edit(path: Path, change) -> None:
    docs = list(yaml.safe_load_all(path.read_text()))
    change(docs)
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))


def _inject(tree: Path) -> None:
    _edit(tree / SECRET, lambda d: d[0]["stringData"].update(secretkey=CANARIES["secret"]))

    def driver(docs: list[dict]) -> None:
        docs[0]["spec"]["template"]["spec"]["containers"][0]["env"].append(
            {"name": "OBJECTSTORE_PASSWORD", "value": CANARIES["env"]})
    _edit(tree / PIPELINE / "ml-pipeline-driver-deployment.yaml", driver)
    _edit(tree / PIPELINE / "ml-pipeline-ui-configmap.yaml", lambda d: d[0].setdefault("data", {}).update(
        {"dbPassword": CANARIES["configmap"], "session": CANARIES["jwt"]}))


def _tree_credentials(install_render) -> set[str]:
    """Every Secret value and every literal under a credential key in the shared trees' renders, kept when it
    is a value a reader could recognise (6+ characters) and appears nowhere in the render outside those places
    (a word such as `minio` also names Services and images, which outputs rightly mention)."""
    values: set[str] = set()
    for variant in VARIANTS:
        for mode in load_config().modes:
            for which in ("ci", "product"):
                for obj in install_render(variant, mode, which).manifests:
                    if obj.get("kind") == "Secret":
                        values.update(str(v) for v in (obj.get("stringData") or {}).values())
                        for v in (obj.get("data") or {}).values():
                            values.add(base64.b64decode(str(v)).decode(errors="replace"))
                    else:
                        _walk(obj, values)
    return {v for v in values if len(v) >= 6}


def _walk(value, out: set[str], key=None) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _walk(v, out, value.get("name") if k == "value" else k)
    elif isinstance(value, list):
        for v in value:
            _walk(v, out)
    elif key is not None and is_credential_key(key) and is_literal(value):
        out.add(str(value))


def test_static_canary_no_credential_value_reaches_static_outputs(kfp_trees, remote_bases, shared_renderer,
                                                                   install_render, tmp_path) -> None:
    tree = tmp_path / "central-driver"
    shutil.copytree(kfp_trees / "central-driver", tree, ignore=shutil.ignore_patterns(".git"), symlinks=True)
    _inject(tree)
    out = tmp_path / "out"
    code = main(["static", "--variant", f"sidecar-plugin={kfp_trees / 'sidecar-plugin'}",
                 "--variant", f"central-driver={tree}", "--mode", "standalone", "--remote-bases", str(remote_bases),
                 "--cache-dir", str(shared_renderer.cache_dir), "--out", str(out)])
    assert code == 1
    texts = {name: (out / name).read_text() for name in ("static.json", "static.md")}
    doc = json.loads(texts["static.json"])
    # the injected changes are reported, by fingerprint
    secret = doc["inventory"]["standalone"]["sidecar-plugin..central-driver.ci"]["changed"][
        "Secret kubeflow/mlpipeline-minio-artifact"]
    assert [c["path"] for c in secret] == ["stringData.secretkey"]
    assert secret[0]["masked"] and secret[0]["new"].startswith("<value changed: sha256:")
    literal = [f for f in doc["findings"] if f["id"] == "credential.literal"]
    assert {f["evidence"]["location"] for f in literal} >= {
        "spec.template.spec.containers[ml-pipeline-driver].env[OBJECTSTORE_PASSWORD].value",
        'data["dbPassword"]', 'data["session"]'}
    # ... and no value leaks: not the canaries, not any credential of the three shared trees
    leaked = {name: sorted(v[:4] + "…" for v in (set(CANARIES.values()) | _tree_credentials(install_render))
                           if v in text) for name, text in texts.items()}
    assert leaked == {"static.json": [], "static.md": []}
    assert len(_tree_credentials(install_render)) >= 1  # the shared trees' minio secret key is checked
