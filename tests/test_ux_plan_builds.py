"""`run` builds a variant's KFP images from its own tree when they are missing locally (fake docker), `run --plan`
writes the files it names, and slow steps report progress only when asked (or on a terminal)."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from harness.boundary.proc import Runner
from harness.cli import main
from harness.cli.progress import reporter
from harness.live.install import Installer
from harness.plan.build import PlanStep
from harness.plan.images import load_image_builds
from harness.progress import StreamReporter, silent
from harness.testing.fakebin import fake_env, write_fake_bins
from tests.livefakes import shared_cache

ONE = ["--mode", "standalone", "--scenario", "single-component"]


def _full_checkout(kfp_trees: Path, tmp_path: Path) -> Path:
    """The shared central-driver data tree plus the Dockerfiles a full checkout has (fixtures/images.yaml)."""
    tree = tmp_path / "central-driver"
    shutil.copytree(kfp_trees / "central-driver", tree)
    for build in load_image_builds():
        (tree / build.dockerfile).parent.mkdir(parents=True, exist_ok=True)
        (tree / build.dockerfile).write_text("FROM scratch\n")
    return tree


def _plan(capsys, tmp_path: Path, remote_bases: Path, *args: str) -> tuple[int, dict, str]:
    code = main(["run", "--plan", "--plan-format", "json", "--remote-bases", str(remote_bases), "--cache-dir",
                 str(shared_cache()), "--out", str(tmp_path / "out"), *ONE, *args])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if code == 0 else {}, captured.err


def test_plan_builds_placeholder_driver_from_full_checkout(capsys, tmp_path, kfp_trees, remote_bases) -> None:
    tree = _full_checkout(kfp_trees, tmp_path)
    code, plan, err = _plan(capsys, tmp_path, remote_bases, "--variant", f"central-driver={tree}")
    assert code == 0, err  # refused before this change: "no driver image for central-driver"
    builds = [s for s in plan["preflight"] if s["argv"][:2] == ["docker", "build"] and "-f" in s["argv"]]
    refs = {s["argv"][s["argv"].index("-t") + 1] for s in builds}
    assert "kind-registry:5000/driver:central-driver" in refs
    driver = next(s for s in builds if "driver:central-driver" in " ".join(s["argv"]))
    assert driver["argv"][3] == str(tree / "backend/Dockerfile.driver") and driver["argv"][-1] == str(tree)
    assert driver["skip_if"] == ["docker", "image", "inspect", "--format", "{{.Id}}",
                                 "kind-registry:5000/driver:central-driver"]
    # every build precedes the check that all local images exist, and comes before any cluster
    check = next(i for i, s in enumerate(plan["preflight"]) if "locally built image(s) exist" in s["description"])
    assert all(plan["preflight"].index(s) < check for s in builds)
    pair = plan["pairs"][0]
    assert any("kind-registry:5000/driver:central-driver" in c for c in pair["image_changes"])
    assert set(pair["local_images"]) == refs  # each image the install pulls from the registry is built


def test_plan_driver_image_flag_overrides_local_build(capsys, tmp_path, kfp_trees, remote_bases) -> None:
    tree = _full_checkout(kfp_trees, tmp_path)
    code, plan, err = _plan(capsys, tmp_path, remote_bases, "--variant", f"central-driver={tree}",
                            "--driver-image", "central-driver=ghcr.io/example/driver:pr1")
    assert code == 0, err
    built = [" ".join(s["argv"]) for s in plan["preflight"] if s["argv"][:2] == ["docker", "build"]]
    assert not any("/driver:" in b for b in built)
    assert any("ghcr.io/example/driver:pr1" in c for c in plan["pairs"][0]["image_changes"])


def test_plan_without_dockerfiles_refuses_in_one_line_naming_both_fixes(capsys, tmp_path, kfp_trees,
                                                                          remote_bases) -> None:
    code, _plan_data, err = _plan(capsys, tmp_path, remote_bases, "--variant",
                                  f"central-driver={kfp_trees / 'central-driver'}")
    assert code == 2 and err.count("\n") == 1
    assert "backend/Dockerfile.driver" in err and "--driver-image central-driver=REF" in err


def test_plan_writes_the_files_it_names_and_says_where(capsys, tmp_path, kfp_trees, remote_bases) -> None:
    code, plan, err = _plan(capsys, tmp_path, remote_bases, "--variant", f"driver-pod={kfp_trees / 'driver-pod'}")
    assert code == 0, err
    plan_dir = tmp_path / "out" / plan["run_id"]
    assert err.strip().splitlines()[-1].endswith(f"written to {plan_dir}")
    named = [s["manifest"] for p in plan["pairs"] for s in p["steps"] if s.get("manifest")]
    assert named and all((plan_dir / m).is_file() for m in named)
    assert json.loads((plan_dir / "plan.json").read_text()) == plan


def test_install_fake_docker_builds_missing_image_once(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "backend").mkdir(parents=True)
    (tree / "backend" / "Dockerfile.driver").write_text("FROM scratch\n")
    bins = write_fake_bins(tmp_path / "bin")
    log, state = tmp_path / "log.jsonl", tmp_path / "state.json"
    env = fake_env(bins, log, state, KFPC_FAKE_MISSING_IMAGES="driver:")
    ref = "kind-registry:5000/driver:cd"
    step = PlanStep("", "", "preflight", "command", "build", timeout=60, skip_if=(
        "docker", "image", "inspect", "--format", "{{.Id}}", ref),
        argv=("docker", "build", "-f", str(tree / "backend/Dockerfile.driver"), "-t", ref, str(tree)))
    lines: list[str] = []
    installer = Installer(Runner(env=env), tmp_path, lines.append)
    installer.run_steps([step])
    installer.run_steps([step])  # the image exists now: the second run does not build again
    calls = [json.loads(line)["argv"][:2] for line in log.read_text().splitlines()]
    assert calls == [["image", "inspect"], ["build", "-f"], ["image", "inspect"]]
    assert "  already done; skipped" in lines


def test_progress_reporter_quiet_unless_terminal_or_asked() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    args = type("Args", (), {"progress": None})()
    assert reporter(args, io.StringIO()) is silent  # a pipe or a CI log
    assert isinstance(reporter(args, Tty()), StreamReporter)
    args.progress = False
    assert reporter(args, Tty()) is silent  # --quiet
    args.progress = True
    stream = io.StringIO()
    ticks = iter([10.0, 12.5])
    reporter_ = StreamReporter(stream, clock=lambda: next(ticks))
    reporter_("rendered 1/18")
    assert stream.getvalue() == "kfp-conformance [   2.5s] rendered 1/18\n"
    assert isinstance(reporter(args, io.StringIO()), StreamReporter)  # --progress


@pytest.mark.parametrize("flag, shown", [("--progress", True), ("--quiet", False), (None, False)])
def test_static_progress_flags_on_renders_and_workflow_comparison(capsys, tmp_path, kfp_trees, remote_bases,
                                                                   flag, shown) -> None:
    args = ["static", "--sources", str(kfp_trees), "--remote-bases", str(remote_bases), "--cache-dir",
            str(shared_cache()), "--out", str(tmp_path), "--mode", "standalone", "--variant", "driver-pod",
            "--variant", "central-driver", "--check", "workflows", "--check", "inventory"]
    main(args + ([flag] if flag else []))
    err = capsys.readouterr().err
    for line in ("rendered 4/4: central-driver standalone (product)",
                 "compiled workflows 1/1: driver-pod..central-driver", "check 2/2: workflows"):
        assert (line in err) is shown, err
