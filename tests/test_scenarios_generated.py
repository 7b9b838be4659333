"""The live scenario tests are expanded from the selection, so `--kfpc-config` and `--kfpc-variant` decide
which pairs exist (no config loaded at import, no hard-coded variant name)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent


def test_live_tests_follow_a_renamed_variant_in_kfpc_config(pytester: pytest.Pytester, kfp_trees: Path,
                                                            remote_bases: Path, tmp_path: Path) -> None:
    config = yaml.safe_load((REPO / "fixtures" / "variants.yaml").read_text())
    config["variants"]["central-next"] = config["variants"].pop("central-driver")
    path = tmp_path / "variants.yaml"
    path.write_text(yaml.safe_dump(config))
    result = pytester.runpytest(
        "--collect-only", "-q", "-p", "no:cacheprovider", "--kfpc-config", str(path),
        "--kfpc-variant", f"central-next={kfp_trees / 'central-driver'}", "--kfpc-variant", "sidecar-plugin",
        "--kfpc-sources", str(kfp_trees), "--kfpc-remote-bases", str(remote_bases), "--kfpc-mode", "multi-user",
        str(REPO / "scenarios" / "test_live.py"), str(REPO / "scenarios" / "test_security.py"),
        str(REPO / "scenarios" / "test_migration.py"))
    ids = [line for line in result.outlines if "::" in line]
    assert "central-driver" not in "\n".join(ids)
    assert any("test_live_scenario[central-next.multi-user-loops]" in i for i in ids)
    assert any("test_live_security[central-next.multi-user]" in i for i in ids)
    assert any("test_live_migration_and_rollback[sidecar-plugin-to-central-next-multi-user]" in i for i in ids)
    assert not any("standalone" in i or ".tls" in i for i in ids), "only the selected mode"
