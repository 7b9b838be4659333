#!/usr/bin/env bash
# Online set-up of the data the harness's tests read (what ../shared holds on the team's machines):
# the three KFP trees at the commits the tests were written against, and the Argo Workflows manifests
# that KFP kustomizations use as remote bases, laid out as a mirror. Usage: fetch-shared.sh DEST
set -euo pipefail
dest="${1:?usage: fetch-shared.sh DEST}"
mkdir -p "$dest/kfp-trees" "$dest/remote-bases/github.com/argoproj/argo-workflows"

fetch() {  # fetch REPO_URL COMMIT DIR: a shallow checkout of one commit
  local url="$1" commit="$2" dir="$3"
  if [ -d "$dir/.git" ] && [ "$(git -C "$dir" rev-parse HEAD)" = "$commit" ]; then return; fi
  rm -rf "$dir" && git init -q "$dir"
  git -C "$dir" fetch -q --depth 1 "$url" "$commit"
  git -C "$dir" checkout -q --detach FETCH_HEAD
}

# variant  repository                                   commit (SOURCE.yaml of each tree)
while read -r variant url commit; do
  fetch "$url" "$commit" "$dest/kfp-trees/$variant"
done <<'TREES'
driver-pod https://github.com/kubeflow/pipelines 81fc181b12e4194eeb5ebf88737e46481f07a96b
sidecar-plugin https://github.com/ntny/pipelines 8c4d9c5022a95a9cfe5baf72ffda25cc3d7f833b
central-driver https://github.com/droctothorpe/pipelines 7a10d17ae29e4a68f39774e39d2d53f0845a2618
TREES

for tag in v3.7.3 v4.0.8; do
  tmp="$(mktemp -d)"
  git clone -q --depth 1 --branch "$tag" https://github.com/argoproj/argo-workflows "$tmp/argo"
  rm -rf "$dest/remote-bases/github.com/argoproj/argo-workflows/$tag"
  mkdir -p "$dest/remote-bases/github.com/argoproj/argo-workflows/$tag"
  cp -r "$tmp/argo/manifests" "$dest/remote-bases/github.com/argoproj/argo-workflows/$tag/manifests"
  rm -rf "$tmp"
done
echo "fetch-shared: KFP trees and remote bases are in $dest"
