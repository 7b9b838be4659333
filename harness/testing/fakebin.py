"""Fake `kind`, `kubectl` and `docker` executables for tests at the process boundary (no pytest import).

`write_fake_bins(directory)` writes the fakes' code once as a module (byte-compiled at write time) and one tiny
launcher per tool (shebang: this interpreter with -S), so each call skips site setup and recompiling the
script: a test run makes thousands of fake calls. Each tool:
- append {"tool", "argv", "pid"} as one JSON line to the file in env KFPC_FAKE_LOG;
- keep cluster/registry/image state in the JSON file in env KFPC_FAKE_STATE (under an fcntl lock);
- obey knobs from the environment:
  KFPC_FAKE_DOCKER_DAEMON=0        `docker info` fails like a missing daemon, and so does every `kind` command but `version`
  KFPC_FAKE_CREATE_SLEEP=SECONDS   `kind create cluster` registers the cluster, then sleeps, then writes the kubeconfig
  KFPC_FAKE_DELETE_SLEEP=SECONDS   `kind delete cluster` sleeps before the cluster is gone (killed meanwhile: it stays)
  KFPC_FAKE_WAIT_TIMEOUT=SUBSTR    `kubectl wait` / `rollout status` whose argv contains SUBSTR times out (exit 1)
  KFPC_FAKE_NOT_READY=POD[,POD]    `kubectl get pods -o json`: pods whose name starts with POD are CrashLoopBackOff
                                   (listed as extra pods if no workload makes one)
  KFPC_FAKE_FLAPPING=POD           pods whose name starts with POD are Ready on every other `get pods`
  KFPC_FAKE_WEBHOOK_RACE=SUBSTR    the first kubectl whose argv contains SUBSTR fails like a cert-manager webhook that
                                   does not serve yet; later ones pass
  KFPC_FAKE_FAIL=SUBSTR            any command whose joined argv contains SUBSTR exits 1 with an error
  KFPC_FAKE_TOKEN=VALUE            `kubectl create token` prints VALUE (canary tests)
  KFPC_FAKE_MISSING_IMAGES=SUBSTR  `docker image inspect` of an image containing SUBSTR fails until `docker build -t`
                                   made it
  KFPC_FAKE_SERVER=URL             server written into kubeconfigs (e.g. a fake API on 127.0.0.1)
The fake kubectl keeps, per context, the API objects an install needs and answers like the API server:
`apply -f FILE` applies object by object (a namespaced object in a missing Namespace is NotFound, a kind
without a CRD has no mapping; both exit 1 after the rest is applied), `wait crd/...` and `rollout status`
need the object, `wait deployment --all` with none is "no matching resources found", `get pods` lists one
Ready pod per replica of each applied workload, a Profile becomes a namespace once the Profile controller
runs. It has no network: `apply -k` or a URL fails (tests pass the offline mirror). docs/fidelity.md lists each.
`kubectl port-forward` and `kubectl exec` are handed to `harness.testing.fakekubectl`, which talks to the
fake API server of `harness.testing.fakeapi` named in the kubeconfig.
"""

from __future__ import annotations

import json
import os
import py_compile
import stat
import sys
from pathlib import Path
from typing import Any

TOOLS = ("kind", "kubectl", "docker")

_SCRIPT = r'''
import fcntl, json, os, sys, time

TOOL = os.path.basename(sys.argv[0])  # the launcher's name: kind, kubectl or docker
argv = sys.argv[1:]
joined = " ".join(argv)


def log():
    path = os.environ.get("KFPC_FAKE_LOG")
    if not path:
        return
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.write(json.dumps({"tool": TOOL, "argv": argv, "pid": os.getpid(), "cwd": os.getcwd()}) + "\n")


class State:
    def __enter__(self):
        path = os.environ.get("KFPC_FAKE_STATE") or os.devnull
        self.fh = open(path, "a+")
        fcntl.flock(self.fh, fcntl.LOCK_EX)
        self.fh.seek(0)
        text = self.fh.read()
        self.data = json.loads(text) if text.strip() else {}
        self.data.setdefault("clusters", {})
        self.data.setdefault("images", [])
        self.data.setdefault("loaded", [])
        self.data.setdefault("registry", False)
        return self.data

    def __exit__(self, *exc):
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(json.dumps(self.data, indent=1, sort_keys=True))
        self.fh.flush()
        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()


def opt(name, default=None):
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return default


def fail(message, code=1):
    sys.stderr.write(message + "\n")
    sys.exit(code)


def kubeconfig_text(name):
    server = os.environ.get("KFPC_FAKE_SERVER", "https://127.0.0.1:6443")
    ctx = "kind-" + name
    return json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": ctx,
        "clusters": [{"name": ctx, "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
        "users": [{"name": ctx, "user": {"token": "fake-admin-token-not-secret"}}],
        "contexts": [{"name": ctx, "context": {"cluster": ctx, "user": ctx}}],
    })


def kind():
    from pathlib import Path  # imported where used: most calls (kubectl, docker) never need it

    if os.environ.get("KFPC_FAKE_DOCKER_DAEMON", "1") == "0" and argv[:1] != ["version"]:
        # kind's docker provider shells out to `docker ps`/`docker rm` for every cluster operation
        fail('ERROR: failed to list clusters: command "docker ps -a --filter label=io.x-k8s.kind.cluster '
             '--format \'{{.Label "io.x-k8s.kind.cluster"}}\'" failed with error: exit status 1')
    if argv[:2] == ["create", "cluster"]:
        name = opt("--name", "kind")
        with State() as s:
            if name in s["clusters"]:
                fail(f'ERROR: failed to create cluster: node(s) already exist for a cluster with the name "{name}"')
            s["clusters"][name] = {"state": "creating", "config": opt("--config"), "pid": os.getpid()}
        time.sleep(float(os.environ.get("KFPC_FAKE_CREATE_SLEEP", "0")))
        kc = opt("--kubeconfig")
        if kc:
            Path(kc).parent.mkdir(parents=True, exist_ok=True)
            Path(kc).write_text(kubeconfig_text(name))
        with State() as s:
            if name in s["clusters"]:
                s["clusters"][name]["state"] = "ready"
        sys.stderr.write(f"Creating cluster \"{name}\" ...\n")
    elif argv[:2] == ["delete", "cluster"]:
        name = opt("--name", "kind")
        # removing the node containers takes time; a delete killed meanwhile leaves the cluster in place
        time.sleep(float(os.environ.get("KFPC_FAKE_DELETE_SLEEP", "0")))
        with State() as s:
            s["clusters"].pop(name, None)
            s.get("api", {}).pop("kind-" + name, None)
        sys.stderr.write(f"Deleting cluster \"{name}\" ...\n")
    elif argv[:2] == ["get", "clusters"]:
        with State() as s:
            names = sorted(s["clusters"])
        if not names:
            sys.stderr.write("No kind clusters found.\n")
        print("\n".join(names))
    elif argv[:2] == ["export", "logs"]:
        dest = Path(argv[2])
        dest.mkdir(parents=True, exist_ok=True)
        (dest / "kind-version.txt").write_text("kind fake\n")
        print(str(dest))
    elif argv[:2] == ["export", "kubeconfig"]:
        kc = opt("--kubeconfig")
        Path(kc).parent.mkdir(parents=True, exist_ok=True)
        Path(kc).write_text(kubeconfig_text(opt("--name", "kind")))
    elif argv[:2] == ["load", "docker-image"]:
        with State() as s:
            s["loaded"].append([opt("--name", "kind"), argv[2]])
    elif argv[:1] == ["version"]:
        print("kind v0.31.0 go1.24 linux/amd64 (fake)")
    else:
        fail("fake kind: unsupported " + joined, 2)


# -- a cluster's API objects, as far as the install needs them (per kubectl context) ----------------------
# Kinds the API server serves without a CRD, and which of them are cluster-scoped (Kubernetes v1.34).
BUILTIN_GROUPS = {"", "apps", "batch", "rbac.authorization.k8s.io", "networking.k8s.io", "policy",
                  "apiextensions.k8s.io", "admissionregistration.k8s.io", "apiregistration.k8s.io",
                  "storage.k8s.io", "scheduling.k8s.io", "coordination.k8s.io", "autoscaling",
                  "certificates.k8s.io", "node.k8s.io", "discovery.k8s.io", "events.k8s.io"}
CLUSTER_KINDS = {"Namespace", "Node", "PersistentVolume", "ClusterRole", "ClusterRoleBinding",
                 "CustomResourceDefinition", "StorageClass", "PriorityClass", "MutatingWebhookConfiguration",
                 "ValidatingWebhookConfiguration", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
                 "APIService", "IngressClass", "RuntimeClass", "CSIDriver", "CertificateSigningRequest"}
# what `kind create cluster` leaves (kind v0.31 node image: kubeadm's namespaces plus local-path-storage)
KIND_NAMESPACES = ["default", "kube-node-lease", "kube-public", "kube-system", "local-path-storage"]
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet"}


def cluster(s):
    """The API objects of a cluster this fake kind created (None for any other context: an existing cluster whose
    contents the fake does not know, e.g. one served by harness.testing.fakeapi, accepts what it is sent)."""
    ctx = opt("--context", "default")
    if not (ctx.startswith("kind-") and ctx[5:] in s["clusters"]):
        return None
    api = s.setdefault("api", {})
    if ctx not in api:
        api[ctx] = {"namespaces": list(KIND_NAMESPACES), "crds": {}, "workloads": [], "objects": []}
    return api[ctx]


def group_of(api_version):
    return api_version.rpartition("/")[0]


def apply_objects(c, docs, source):
    """Server-side apply, object by object in file order like kubectl: one failure does not stop the rest."""
    errors, applied = [], []
    for obj in docs:
        kind, meta = obj.get("kind", ""), obj.get("metadata") or {}
        name, group = meta.get("name", ""), group_of(obj.get("apiVersion", ""))
        if group in BUILTIN_GROUPS:
            namespaced = kind not in CLUSTER_KINDS
        else:
            crd = next((d for d in c["crds"].values() if d["group"] == group and d["kind"] == kind), None)
            if crd is None:  # kubectl's RESTMapper has no mapping: nothing reaches the server
                errors.append(f'error: resource mapping not found for name: "{name}" namespace: '
                              f'"{meta.get("namespace", "")}" from "{source}": no matches for kind "{kind}" in version '
                              f'"{obj.get("apiVersion")}"\nensure CRDs are installed first')
                continue
            namespaced = crd["scope"] == "Namespaced"
        namespace = (meta.get("namespace") or "default") if namespaced else ""
        if namespaced and namespace not in c["namespaces"]:  # the NamespaceLifecycle admission plugin
            errors.append(f'Error from server (NotFound): namespaces "{namespace}" not found')
            continue
        if kind == "Namespace" and name not in c["namespaces"]:
            c["namespaces"].append(name)
        if kind == "CustomResourceDefinition":
            spec = obj.get("spec") or {}
            c["crds"][name] = {"group": spec.get("group", ""), "kind": (spec.get("names") or {}).get("kind", ""),
                               "scope": spec.get("scope", "Namespaced")}
        if kind in WORKLOADS:
            template = ((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}
            c["workloads"] = [w for w in c["workloads"] if (w["kind"], w["namespace"], w["name"]) != (kind, namespace, name)]
            c["workloads"].append({"kind": kind, "namespace": namespace, "name": name,
                                   "labels": template.get("labels") or {},
                                   "replicas": (obj.get("spec") or {}).get("replicas", 1)})
        if kind == "Profile" and any(w["labels"].get("app.kubernetes.io/name") == "profile-controller"
                                     for w in c["workloads"]):
            # the Kubeflow Profile controller reconciles a Profile into its namespace
            if name not in c["namespaces"]:
                c["namespaces"].append(name)
        key = [kind, namespace, name]
        if key not in c["objects"]:
            c["objects"].append(key)
        applied.append(f"{kind.lower()}{'.' + group if group else ''}/{name} serverside-applied")
    return applied, errors


def pod_name(workload, index):
    import hashlib

    digest = hashlib.sha256(f"{workload['namespace']}/{workload['name']}".encode()).hexdigest()
    if workload["kind"] == "StatefulSet":
        return f"{workload['name']}-{index}"
    if workload["kind"] == "DaemonSet":
        return f"{workload['name']}-{digest[:5]}"
    return f"{workload['name']}-{digest[:10]}-{digest[10 + index:15 + index]}"


def selected(labels, selector):
    pairs = [p.split("=", 1) for p in selector.split(",") if p]
    return all(labels.get(k) == v for k, v in pairs)


KFP_PODS = [{"kind": "Deployment", "namespace": "kubeflow", "name": n, "labels": {}, "replicas": 1}
            for n in ("ml-pipeline", "workflow-controller", "mysql", "seaweedfs")]


def pods_json(c, polls):
    """One Running, Ready pod per replica of every applied workload in the namespace (the controllers and the
    kubelet are assumed to work), except pods named by knobs:
      KFPC_FAKE_NOT_READY=NAME[,NAME]  a pod whose name starts with NAME is CrashLoopBackOff (an extra pod with
                                       that name if none does)
      KFPC_FAKE_FLAPPING=NAME          a pod whose name starts with NAME is Ready on every other poll"""
    namespace, selector = opt("-n", "default"), opt("-l", "")
    not_ready = [p for p in os.environ.get("KFPC_FAKE_NOT_READY", "").split(",") if p]
    flapping = os.environ.get("KFPC_FAKE_FLAPPING", "")
    pods = []
    for w in (c["workloads"] if c is not None else [dict(w, namespace=namespace) for w in KFP_PODS]):
        if w["namespace"] == namespace and selected(w["labels"], selector):
            pods += [(pod_name(w, i), w["labels"]) for i in range(int(w["replicas"]))]
    names = [n for n, _ in pods]
    pods += [(n, {}) for n in not_ready if not any(name.startswith(n) for name in names)]
    items = []
    for name, labels in pods:
        bad = any(name.startswith(n) for n in not_ready) or (flapping and name.startswith(flapping) and polls % 2)
        items.append({
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "False" if bad else "True"}],
                "containerStatuses": [{"name": "main", "ready": not bad, "restartCount": polls // 2 if bad else 0,
                                       "state": ({"waiting": {"reason": "CrashLoopBackOff"}} if bad
                                                 else {"running": {}})}],
            },
        })
    return {"apiVersion": "v1", "kind": "List", "items": items}


def read_manifests(path):
    import yaml

    with open(path) as fh:
        return [d for d in yaml.safe_load_all(fh) if isinstance(d, dict)]


def kubectl():
    # strip option values of global flags
    skip = set()
    for i, a in enumerate(argv):
        if a in ("--kubeconfig", "--context", "-n", "--namespace", "-f", "-k", "-o", "-l", "--field-manager",
                 "--for", "--timeout", "--sort-by", "--tail", "--audience", "--duration", "--selector"):
            skip.add(i + 1)
    words = [a for i, a in enumerate(argv) if i not in skip and not a.startswith("-")]
    verb = words[0] if words else ""
    target = os.environ.get("KFPC_FAKE_WAIT_TIMEOUT")
    if verb in ("wait", "rollout") and target and target in joined:
        fail(f"error: timed out waiting for the condition on {words[-1] if words else 'resource'}")
    if verb == "apply":
        source = opt("-f") or opt("-k") or ""
        with State() as s:
            known = cluster(s) is not None
        if not known:
            print("applied (fake, unknown cluster) " + source)
            return
        if "://" in source or opt("-k"):
            # the fake has no network and no kustomize: tests apply what the plan rendered (offline mirror)
            fail(f"fake kubectl: cannot apply {source} (the fake reads only rendered files; pass --remote-bases "
                 "with the prerequisite in it)")
        docs = read_manifests(source)
        with State() as s:
            applied, errors = apply_objects(cluster(s), docs, source)
        print("\n".join(applied))
        if errors:
            fail("\n".join(errors))
    elif verb == "wait":
        with State() as s:
            c = cluster(s)
        if c is None:
            print(" ".join(words[1:]) + " condition met")
            return
        namespace = opt("-n", "default")
        if "deployment" in words[1:2] and "--all" in argv:
            found = [w for w in c["workloads"] if w["kind"] == "Deployment" and w["namespace"] == namespace]
            if not found:
                fail("error: no matching resources found")
            print("\n".join(f"deployment.apps/{w['name']} condition met" for w in found))
            return
        for ref in words[1:]:
            kind, _, name = ref.partition("/")
            if kind == "crd" and name not in c["crds"]:
                fail(f'Error from server (NotFound): customresourcedefinitions.apiextensions.k8s.io "{name}" not found')
        print("\n".join(f"{w} condition met" for w in words[1:]))
    elif verb == "rollout":
        kind, _, name = words[-1].partition("/")
        namespace = opt("-n", "default")
        with State() as s:
            c = cluster(s)
        if c is not None and not any(w["kind"].lower() == kind and w["name"] == name and w["namespace"] == namespace for w in c["workloads"]):
            fail(f'Error from server (NotFound): {kind}s.apps "{name}" not found')
        print(f'{kind} "{name}" successfully rolled out')
    elif verb == "get" and "pods" in words[1:2] and opt("-o") == "json":
        with State() as s:
            c = cluster(s)
            s["polls"] = s.get("polls", 0) + 1
            polls = s["polls"]
        print(json.dumps(pods_json(c, polls)))
    elif verb == "get" and len(words) >= 3 and opt("-n"):
        with State() as s:
            c = cluster(s)
        if c is not None and opt("-n") not in c["namespaces"]:
            fail(f'Error from server (NotFound): {words[1]}s "{words[2]}" not found')
        print(f"{words[1]}/{words[2]}")
    elif verb == "get":
        print("NAME   READY   STATUS\nfake   1/1     Running")
    elif verb == "describe":
        print("Name: " + (words[1] if len(words) > 1 else "") + "\nEvents: <fake>")
    elif verb == "logs":
        print("fake log line for " + " ".join(words[1:]))
        if os.environ.get("KFPC_FAKE_TOKEN"):  # a component that logs its auth header (canary tests)
            print("calling ml-pipeline with Authorization: Bearer " + os.environ["KFPC_FAKE_TOKEN"])
    elif verb == "version":
        print(json.dumps({"clientVersion": {"gitVersion": "v1.34.0-fake"}, "serverVersion": {"gitVersion": "v1.34.0"}}))
    elif verb == "create" and words[1:2] == ["token"]:
        print(os.environ.get("KFPC_FAKE_TOKEN", "fake-token-value"))
    elif verb == "cluster-info":
        print("Kubernetes control plane is running at https://127.0.0.1:6443")
    elif verb in ("port-forward", "exec"):
        # talk to the fake API server (harness.testing.fakeapi) through RUNS' fake kubectl
        os.environ.setdefault("KFPC_FAKE_KUBECTL_LOG", os.environ.get("KFPC_FAKE_LOG", os.devnull) + ".api")
        os.execv(sys.executable, [sys.executable, "-m", "harness.testing.fakekubectl", *argv])
    else:
        print("ok (fake kubectl " + verb + ")")


def docker():
    if argv[:1] == ["info"]:
        if os.environ.get("KFPC_FAKE_DOCKER_DAEMON", "1") == "0":
            fail("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?")
        print("27.0.0-fake")
    elif argv[:1] == ["run"]:
        with State() as s:
            if s["registry"]:
                fail('docker: Error response from daemon: Conflict. The container name "/kind-registry" is already in use')
            s["registry"] = True
        print("0123456789ab")
    elif argv[:2] == ["network", "connect"]:
        print("")
    elif argv[:1] == ["tag"] or argv[:1] == ["pull"]:
        print("")
    elif argv[:1] == ["build"]:
        # a real build reads its context; the fake checks the plan wrote it (cwd is the run's out dir).
        # `-f FILE` names the Dockerfile, else it is CONTEXT/Dockerfile (docker build --help)
        dockerfile = argv[argv.index("-f") + 1] if "-f" in argv else os.path.join(argv[-1], "Dockerfile")
        if not os.path.isfile(dockerfile):
            fail(f"fake docker: unable to prepare context: {dockerfile} not found", 1)
        if "-t" in argv:
            with State() as s:
                s.setdefault("built", []).append(argv[argv.index("-t") + 1])
        print("Successfully built fake")
    elif argv[:1] == ["push"]:
        with State() as s:
            s["images"].append(argv[1])
    elif argv[:2] == ["image", "inspect"]:
        # KFPC_FAKE_MISSING_IMAGES=SUBSTR: images containing SUBSTR do not exist until built; like docker, one
        # missing image fails the whole inspect (exit 1, "Error: No such image: REF")
        missing = os.environ.get("KFPC_FAKE_MISSING_IMAGES")
        with State() as s:
            built = s.get("built", [])
        gone = [r for r in argv[2:] if not r.startswith("-") and r != "{{.Id}}" and missing and missing in r
                and r not in built]
        if gone:
            print("[]")
            fail(f"Error: No such image: {gone[0]}", 1)
        print("[]")
    elif argv[:1] in (["exec"], ["rm"], ["inspect"]):
        print("")
    else:
        fail("fake docker: unsupported " + joined, 2)


log()
failing = os.environ.get("KFPC_FAKE_FAIL")
if failing and failing in f"{TOOL} {joined}":
    fail(f"fake {TOOL}: forced failure for {failing!r}")
webhook = os.environ.get("KFPC_FAKE_WEBHOOK_RACE")
if TOOL == "kubectl" and webhook and webhook in joined:
    with State() as s:
        first = webhook not in s.setdefault("raced", [])
        s["raced"].append(webhook)
    if first:  # cert-manager's webhook Service has no ready endpoint yet (message as the API server words it)
        fail('Error from server (InternalError): Internal error occurred: failed calling webhook '
             '"webhook.cert-manager.io": failed to call webhook: Post "https://cert-manager-webhook.cert-manager.svc:443/'
             'validate?timeout=30s": dial tcp 10.96.0.10:443: connect: connection refused')
{"kind": kind, "kubectl": kubectl, "docker": docker}[TOOL]()
'''

_MODULE = "kfpc_fake_tools"
# The launcher runs with -S (no site: ~10 ms less per call); the fakes' own module comes first on sys.path and
# this interpreter's site paths (PyYAML for `kubectl apply`) after it, imported only when a call needs them.
_LAUNCHER = """#!{python} -S
import sys
sys.path[:0] = [{bin_dir!r}]
sys.path += {site_paths!r}
import {module}  # noqa: E402,F401  (runs the tool named by sys.argv[0])
"""


def write_fake_bins(directory: Path, tools: tuple[str, ...] = TOOLS) -> Path:
    """Write the fake executables into `directory` (created) and return it; put it first on PATH."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    module = directory / f"{_MODULE}.py"
    module.write_text(_SCRIPT)
    py_compile.compile(str(module), doraise=True)  # before any call: parallel first calls never race to compile
    site_paths = [p for p in sys.path if p and Path(p).is_dir() and Path(p).resolve() != directory.resolve()]
    launcher = _LAUNCHER.format(python=sys.executable, bin_dir=str(directory), site_paths=site_paths, module=_MODULE)
    for tool in tools:
        path = directory / tool
        path.write_text(launcher)
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return directory


def fake_env(bin_dir: Path, log: Path, state: Path, **knobs: str) -> dict[str, str]:
    """Environment for a process that must find the fakes first on PATH (knobs: KFPC_FAKE_* values)."""
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "KFPC_FAKE_LOG": str(log),
           "KFPC_FAKE_STATE": str(state)}
    env.update(knobs)
    return env


def read_calls(log: Path) -> list[dict[str, Any]]:
    if not Path(log).is_file():
        return []
    return [json.loads(line) for line in Path(log).read_text().splitlines() if line.strip()]


def read_state(state: Path) -> dict[str, Any]:
    text = Path(state).read_text() if Path(state).is_file() else ""
    return json.loads(text) if text.strip() else {"clusters": {}, "images": [], "loaded": [], "registry": False}
