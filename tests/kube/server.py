"""A small Kubernetes API server for tests/kube: enough of the real protocol
that launch's kubernetes runner, and the real kubectl, work against it.

  - HTTPS with a CA made at start (the openssl CLI, in the directory given),
    a server certificate for 127.0.0.1/localhost and a client certificate;
    every API request needs a bearer token the server knows (argv, or added
    with /_test/tokens) or that client certificate; else 401.
  - Discovery: /version, /api, /api/v1, /apis, /apis/batch/v1.
  - batch/v1 Jobs, v1 Pods, v1 Secrets, v1 Events: create (generateName),
    get, list and watch (labelSelector: k, !k, k=v, k==v, k!=v; fieldSelector
    on any dotted field, e.g. metadata.name or involvedObject.kind), delete (propagationPolicy Foreground,
    Background, Orphan). Watch is a chunked stream of JSON lines from a
    resourceVersion, with bookmarks when asked for
    (allowWatchBookmarks), and an ERROR event with a 410 Status ("too old
    resource version") for a resourceVersion older than the history kept;
    /_test/compact drops the history, /_test/drop-watches cuts every watch.
  - Every Job it receives is validated against the published schema
    (tests/data/kubernetes/job-batch-v1.json): unknown fields and wrong types
    are refused with 400 ("strict decoding error", as the real API does with
    fieldValidation=Strict), missing required fields with 422 Invalid. Secrets
    and Pods are checked by hand (their fields, their types).
  - Pod logs: /api/v1/namespaces/N/pods/P/log (container, follow).
  - A simulated kubelet and Job controller: a Job gets a Pod (labels from its
    template plus job-name and controller-uid), Pending, then Running, then
    Succeeded or Failed; Job conditions Complete/Failed follow, and
    ttlSecondsAfterFinished deletes it. The first container is "run" this
    way: a command ["sh", "-c", SCRIPT] (or "/bin/sh") runs SCRIPT's
    statements, split on ';' and newlines: `echo WORDS` (with $VAR and ${VAR}
    from the container's env) writes a log line, `sleep SECONDS` waits,
    `exit N` ends it with N, `evict-if A B` (after expansion) evicts the pod
    when A equals B: it fails with a DisruptionTarget condition (reason
    EvictionByEvictionAPI), as `kubectl drain` leaves it; anything else fails
    with 127, as sh would. Any other command writes "run: ARGV" and exits 0.
  - What keeps a pod from starting, each with the pod status and the Events
    the real kubelet and scheduler give:
      - a pod template annotation `launch-test/unschedulable` (any value):
        PodScheduled False, reason Unschedulable, and a FailedScheduling
        event; the pod stays Pending;
      - an image whose name contains `no-such-image`: its container waits
        with ErrImagePull, then ImagePullBackOff (events Failed, BackOff);
        the pod stays Pending;
      - restartPolicy OnFailure and a script that exits non-zero: the
        container waits with CrashLoopBackOff (restartCount + 1, a BackOff
        event) and runs again, until the Job's backoffLimit is spent.
    The container env's `valueFrom.secretKeyRef` is read from the Secret
    (a missing Secret or key keeps the container waiting with
    CreateContainerConfigError, as the kubelet does).

Usage: server.py DIR TOKEN[,TOKEN...]; prints {"port": N} once serving and
serves until stdin closes. /_test/state says what it saw.
"""
import base64
import datetime
import http.server
import json
import os
import random
import re
import shlex
import socketserver
import ssl
import string
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA = json.load(open(os.path.join(HERE, "..", "data", "kubernetes", "job-batch-v1.json")))

LOCK = threading.Condition()
STATE = {
    "rv": 1,
    "compacted": 0,       # events at or below this resourceVersion are gone
    "history": [],        # (rv, resource, type, object)
    "objects": {"jobs": {}, "pods": {}, "secrets": {}, "events": {}},  # (ns, name) -> object
    "logs": {},           # (ns, pod) -> [lines]
    "tokens": set(),
    "watch_generation": 0,
    "bookmark_seconds": 1.0,
    "requests": [],       # "METHOD path?query"
    "deletes": [],        # {"resource", "name", "propagationPolicy"}
    "watches": {"jobs": 0, "pods": 0, "secrets": 0, "events": 0},
    "rejected": [],       # what validation refused
    "kills": set(),       # (ns, pod) whose simulation must stop
}

RESOURCES = {
    "jobs": {"group": "batch", "version": "v1", "kind": "Job", "list": "JobList"},
    "pods": {"group": "", "version": "v1", "kind": "Pod", "list": "PodList"},
    "secrets": {"group": "", "version": "v1", "kind": "Secret", "list": "SecretList"},
    "events": {"group": "", "version": "v1", "kind": "Event", "list": "EventList"},
}


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def api_version(resource):
    r = RESOURCES[resource]
    return (r["group"] + "/" if r["group"] else "") + r["version"]


def status(code, reason, message, details=None):
    s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
         "message": message, "reason": reason, "code": code}
    if details:
        s["details"] = details
    return s


class ApiError(Exception):
    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.body = status(code, reason, message, details)
        self.code = code


# ---- validation against the published schema -------------------------------

TYPES = {"string": str, "object": dict, "array": list, "boolean": bool}


def type_ok(t, v):
    if t == "null":
        return v is None
    if t == "integer":
        return isinstance(v, int) and not isinstance(v, bool)
    if t == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    return isinstance(v, TYPES[t])


def validate(schema, v, path, unknown, invalid):
    t = schema.get("type")
    if t is not None:
        ts = t if isinstance(t, list) else [t]
        if not any(type_ok(x, v) for x in ts):
            invalid.append("%s: expected %s, got %s" % (path or ".", "/".join(x for x in ts if x != "null"),
                                                        type(v).__name__))
            return
    if v is None:
        return
    if "enum" in schema and v not in schema["enum"]:
        invalid.append("%s: unsupported value %r (expected one of %s)" % (path, v, schema["enum"]))
    if "oneOf" in schema:
        ok = 0
        for s in schema["oneOf"]:
            u, i = [], []
            validate(s, v, path, u, i)
            ok += not u and not i
        if ok != 1:
            invalid.append("%s: %r matches none of its types" % (path, v))
    if isinstance(v, dict):
        props = schema.get("properties", {})
        for k in schema.get("required", []):
            if k not in v:
                unknown.append(("required", "%s%s%s: Required value" % (path, "." if path else "", k)))
        extra = schema.get("additionalProperties")
        for k, x in v.items():
            p = "%s%s%s" % (path, "." if path else "", k)
            if k in props:
                validate(props[k], x, p, unknown, invalid)
            elif extra is False:
                unknown.append(("unknown", 'unknown field "%s"' % p))
            elif isinstance(extra, dict):
                validate(extra, x, p, unknown, invalid)
    if isinstance(v, list) and "items" in schema:
        for i, x in enumerate(v):
            validate(schema["items"], x, "%s[%d]" % (path, i), unknown, invalid)


def check_job(obj):
    unknown, invalid = [], []
    validate(SCHEMA, obj, "", unknown, invalid)
    strict = [m for k, m in unknown if k == "unknown"] + invalid
    if strict:
        STATE["rejected"].append(strict)
        raise ApiError(400, "BadRequest", "Job in version \"v1\" cannot be handled as a Job: "
                       "strict decoding error: " + ", ".join(strict))
    required = [m for k, m in unknown if k == "required"]
    # What the real API's validation adds to the schema's requirements.
    spec = obj.get("spec") or {}
    pod = ((spec.get("template") or {}).get("spec")) or {}
    if not spec.get("template"):
        required.append("spec.template: Required value")
    if not pod.get("containers"):
        required.append("spec.template.spec.containers: Required value")
    for i, c in enumerate(pod.get("containers") or []):
        if not c.get("image"):
            required.append("spec.template.spec.containers[%d].image: Required value" % i)
    rp = pod.get("restartPolicy")
    if rp not in (None, "Never", "OnFailure"):
        required.append('spec.template.spec.restartPolicy: Unsupported value: "%s": supported '
                        'values: "OnFailure", "Never"' % rp)
    check_labels(obj, required)
    if required:
        STATE["rejected"].append(required)
        name = (obj.get("metadata") or {}).get("name") or (obj.get("metadata") or {}).get("generateName", "")
        raise ApiError(422, "Invalid", 'Job.batch "%s" is invalid: %s' % (name, "; ".join(required)),
                       {"kind": "jobs", "group": "batch",
                        "causes": [{"reason": "FieldValueRequired", "message": m} for m in required]})


LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def check_labels(obj, errors):
    def one(labels, path):
        for k, v in (labels or {}).items():
            if not LABEL_KEY.match(k) or len(k.split("/")[-1]) > 63:
                errors.append("%s: Invalid value: %r: invalid label key" % (path, k))
            if not isinstance(v, str) or len(v) > 63 or not LABEL_VALUE.match(v):
                errors.append("%s: Invalid value: %r: a valid label must be 63 characters or less, "
                              "alphanumeric, '-', '_' or '.'" % (path, v))
    one((obj.get("metadata") or {}).get("labels"), "metadata.labels")
    one((((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels"),
        "spec.template.metadata.labels")


def check_secret(obj):
    errors = []
    allowed = {"apiVersion", "kind", "metadata", "data", "stringData", "type", "immutable"}
    for k in obj:
        if k not in allowed:
            errors.append('unknown field "%s"' % k)
    for key in ("data", "stringData"):
        for k, v in (obj.get(key) or {}).items():
            if not isinstance(v, str):
                errors.append("%s.%s: expected string" % (key, k))
            if not re.match(r"^[-._a-zA-Z0-9]+$", k):
                errors.append("%s.%s: Invalid value: a valid config key must consist of "
                              "alphanumeric characters, '-', '_' or '.'" % (key, k))
    for i, ref in enumerate((obj.get("metadata") or {}).get("ownerReferences") or []):
        for f in ("apiVersion", "kind", "name", "uid"):
            if not isinstance(ref.get(f), str) or not ref.get(f):
                errors.append("metadata.ownerReferences[%d].%s: Required value" % (i, f))
    if errors:
        STATE["rejected"].append(errors)
        raise ApiError(400, "BadRequest", "strict decoding error: " + ", ".join(errors))


# ---- the store ---------------------------------------------------------------

def next_rv():
    STATE["rv"] += 1
    return STATE["rv"]


def record(resource, typ, obj):
    """Stores an event (LOCK held) and wakes the watchers."""
    STATE["history"].append((int(obj["metadata"]["resourceVersion"]), resource, typ,
                             json.loads(json.dumps(obj))))
    LOCK.notify_all()


def put(resource, obj, typ):
    obj["metadata"]["resourceVersion"] = str(next_rv())
    md = obj["metadata"]
    STATE["objects"][resource][(md["namespace"], md["name"])] = obj
    record(resource, typ, obj)


def remove(resource, ns, name):
    obj = STATE["objects"][resource].pop((ns, name), None)
    if obj is None:
        return None
    obj["metadata"]["resourceVersion"] = str(next_rv())
    record(resource, "DELETED", obj)
    if resource == "pods":
        STATE["kills"].add((ns, name))
    # The garbage collector: what the removed object owns goes with it.
    uid = obj["metadata"].get("uid")
    for res in ("secrets",):
        for key, o in list(STATE["objects"][res].items()):
            if any(r.get("uid") == uid for r in o["metadata"].get("ownerReferences") or []):
                remove(res, *key)
    return obj


def suffix():
    return "".join(random.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))


def create(resource, ns, obj):
    md = obj.setdefault("metadata", {})
    if md.get("namespace") not in (None, "", ns):
        raise ApiError(400, "BadRequest", "the namespace of the provided object does not match "
                       "the namespace sent on the request")
    if resource == "jobs":
        check_job(obj)
    elif resource == "secrets":
        check_secret(obj)
    if not md.get("name"):
        if not md.get("generateName"):
            raise ApiError(422, "Invalid", "metadata.name: Required value: name or generateName "
                           "is required")
        for _ in range(10):
            name = md["generateName"] + suffix()
            if (ns, name) not in STATE["objects"][resource]:
                break
        md["name"] = name
    if (ns, md["name"]) in STATE["objects"][resource]:
        raise ApiError(409, "AlreadyExists", '%s "%s" already exists' % (resource, md["name"]),
                       {"name": md["name"], "kind": resource})
    md["namespace"] = ns
    md["uid"] = str(uuid.uuid4())
    md["creationTimestamp"] = now_iso()
    obj["apiVersion"] = api_version(resource)
    obj["kind"] = RESOURCES[resource]["kind"]
    if resource == "jobs":
        uid = md["uid"]
        tmd = obj["spec"]["template"].setdefault("metadata", {})
        labels = tmd.setdefault("labels", {})
        labels.update({"controller-uid": uid, "batch.kubernetes.io/controller-uid": uid,
                       "job-name": md["name"], "batch.kubernetes.io/job-name": md["name"]})
        obj["spec"].setdefault("selector", {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
        obj["spec"].setdefault("backoffLimit", 6)
        obj["spec"].setdefault("completions", 1)
        obj["spec"].setdefault("parallelism", 1)
        obj["spec"]["template"]["spec"].setdefault("restartPolicy", "Never")
        obj["status"] = {}
    put(resource, obj, "ADDED")
    if resource == "jobs":
        threading.Thread(target=controller, args=(ns, md["name"]), daemon=True).start()
    return obj


def label_match(labels, selector):
    labels = labels or {}
    if not selector:
        return True
    for term in selector.split(","):
        term = term.strip()
        if not term:
            continue
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif "==" in term or "=" in term:
            k, v = re.split("==?", term, 1)
            if labels.get(k.strip()) != v.strip():
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True


def field_match(obj, selector):
    if not selector:
        return True
    for term in selector.split(","):
        negate = "!=" in term
        k, v = term.split("!=", 1) if negate else re.split("==?", term, 1)
        x = obj
        for part in k.split("."):
            x = x.get(part) if isinstance(x, dict) else None
        if (str(x) if x is not None else "") == v if negate else (str(x) if x is not None else "") != v:
            return False
    return True


def matches(obj, ns, q):
    return ((ns is None or obj["metadata"]["namespace"] == ns) and
            label_match(obj["metadata"].get("labels"), q.get("labelSelector")) and
            field_match(obj, q.get("fieldSelector")))


# ---- the simulated Job controller and kubelet ------------------------------

def set_job(ns, name, fn):
    job = STATE["objects"]["jobs"].get((ns, name))
    if job is None:
        return None
    fn(job)
    put("jobs", job, "MODIFIED")
    return job


def run_script(argv, env, log):
    """Runs the container's command as documented; returns its exit code."""
    if len(argv) >= 3 and argv[0] in ("sh", "/bin/sh") and argv[1] == "-c":
        for stmt in re.split(r"[;\n]", argv[2]):
            stmt = stmt.strip()
            if not stmt:
                continue
            expanded = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env.get(m.group(1) or m.group(2), ""), stmt)
            try:
                words = shlex.split(expanded)
            except ValueError:
                words = expanded.split()
            if not words:
                continue
            if words[0] == "echo":
                log(" ".join(words[1:]))
            elif words[0] == "sleep":
                if yield_sleep(float(words[1])):
                    return None
            elif words[0] == "exit":
                return int(words[1]) if len(words) > 1 else 0
            elif words[0] == "evict-if":
                if len(words) == 3 and words[1] == words[2]:
                    return "evicted"
            elif words[0] == "true":
                pass
            else:
                log("sh: %s: not found" % words[0])
                return 127
        return 0
    log("run: " + " ".join(argv))
    return 0


KILLED = threading.local()


def yield_sleep(seconds):
    """Sleeps; True when the pod was deleted meanwhile."""
    end = time.time() + seconds
    with LOCK:
        while time.time() < end:
            if KILLED.key in STATE["kills"]:
                return True
            LOCK.wait(min(0.05, max(0.0, end - time.time())))
        return KILLED.key in STATE["kills"]


def controller(ns, name):
    with LOCK:
        job = STATE["objects"]["jobs"].get((ns, name))
        if job is None:
            return
        spec = json.loads(json.dumps(job["spec"]))
        uid = job["metadata"]["uid"]
    # With OnFailure the pod's container restarts in place (run_pod) instead.
    tries = 1 if spec["template"]["spec"].get("restartPolicy") == "OnFailure" else spec.get("backoffLimit", 6) + 1
    failed = 0
    for attempt in range(tries):
        code, reason = run_pod(ns, name, uid, spec)
        with LOCK:
            if (ns, name) not in STATE["objects"]["jobs"]:
                return
            if code is None:
                return
            if code == 0:
                def done(j):
                    j["status"] = {"succeeded": 1, "startTime": j["status"].get("startTime", now_iso()),
                                   "completionTime": now_iso(),
                                   "conditions": [{"type": "SuccessCriteriaMet", "status": "True",
                                                   "reason": "CompletionsReached",
                                                   "message": "Reached expected number of succeeded pods"},
                                                  {"type": "Complete", "status": "True",
                                                   "reason": "CompletionsReached",
                                                   "message": "Reached expected number of succeeded pods",
                                                   "lastTransitionTime": now_iso()}]}
                set_job(ns, name, done)
                break
            failed += 1
            if attempt + 1 < tries:
                set_job(ns, name, lambda j: j["status"].update({"failed": failed}))
                continue

            def fail(j):
                j["status"] = {"failed": failed, "startTime": j["status"].get("startTime", now_iso()),
                               "conditions": [{"type": "FailureTarget", "status": "True",
                                               "reason": "BackoffLimitExceeded",
                                               "message": "Job has reached the specified backoff limit"},
                                              {"type": "Failed", "status": "True",
                                               "reason": "BackoffLimitExceeded",
                                               "message": "Job has reached the specified backoff limit",
                                               "lastTransitionTime": now_iso()}]}
            set_job(ns, name, fail)
    ttl = spec.get("ttlSecondsAfterFinished")
    if ttl is not None:
        end = time.time() + ttl
        with LOCK:
            while time.time() < end and (ns, name) in STATE["objects"]["jobs"]:
                LOCK.wait(min(0.5, max(0.0, end - time.time())))
            delete_job(ns, name, "Background")


def add_event(ns, pod, reason, message, component="kubelet", typ="Warning"):
    """An Event involving `pod` (LOCK held), as the kubelet or scheduler records it."""
    md = pod["metadata"]
    ev = {"apiVersion": "v1", "kind": "Event",
          "metadata": {"name": "%s.%x" % (md["name"], random.getrandbits(48)), "namespace": ns,
                       "uid": str(uuid.uuid4()), "creationTimestamp": now_iso()},
          "involvedObject": {"kind": "Pod", "namespace": ns, "name": md["name"], "uid": md["uid"],
                             "apiVersion": "v1"},
          "reason": reason, "message": message, "type": typ, "count": 1,
          "firstTimestamp": now_iso(), "lastTimestamp": now_iso(),
          "source": {"component": component}}
    put("events", ev, "ADDED")


def update_pod(ns, pod_name, fn):
    """Applies fn to the stored pod (LOCK held); False when it is gone."""
    p = STATE["objects"]["pods"].get((ns, pod_name))
    if p is None:
        return None
    fn(p)
    put("pods", p, "MODIFIED")
    return p


def wait_forever():
    """A pod that cannot go on waits until it is deleted."""
    while not yield_sleep(0.5):
        pass


def container_env(ns, container):
    """The container's env, secretKeyRef read from its Secret; (env, error)."""
    env = {}
    for e in container.get("env") or []:
        ref = (e.get("valueFrom") or {}).get("secretKeyRef")
        if ref is None:
            env[e["name"]] = e.get("value", "")
            continue
        secret = STATE["objects"]["secrets"].get((ns, ref.get("name")))
        if secret is None:
            return None, 'secret "%s" not found' % ref.get("name")
        data = secret.get("data") or {}
        if ref.get("key") in data:
            env[e["name"]] = base64.b64decode(data[ref["key"]]).decode()
        elif ref.get("key") in (secret.get("stringData") or {}):
            env[e["name"]] = secret["stringData"][ref["key"]]
        else:
            return None, "couldn't find key %s in Secret %s/%s" % (ref.get("key"), ns, ref.get("name"))
    return env, None


def set_waiting(reason, message):
    def fn(p):
        for cs in p["status"]["containerStatuses"][:1]:
            cs["ready"] = False
            cs["state"] = {"waiting": {"reason": reason, "message": message}}
    return fn


def run_pod(ns, job_name, uid, spec):
    tmpl = spec["template"]
    pod_spec = json.loads(json.dumps(tmpl["spec"]))
    containers = pod_spec["containers"]
    annotations = dict((tmpl.get("metadata") or {}).get("annotations") or {})
    with LOCK:
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": job_name + "-" + suffix(), "namespace": ns, "uid": str(uuid.uuid4()),
                            "labels": dict((tmpl.get("metadata") or {}).get("labels") or {}),
                            "annotations": annotations,
                            "creationTimestamp": now_iso(),
                            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job_name,
                                                 "uid": uid, "controller": True,
                                                 "blockOwnerDeletion": True}]},
               "spec": pod_spec,
               "status": {"phase": "Pending", "conditions": [],
                          "containerStatuses": [{"name": c["name"], "image": c["image"], "ready": False,
                                                 "restartCount": 0,
                                                 "state": {"waiting": {"reason": "ContainerCreating"}}}
                                                for c in containers]}}
        pod_name = pod["metadata"]["name"]
        put("pods", pod, "ADDED")
        STATE["logs"][(ns, pod_name)] = []
        set_job(ns, job_name, lambda j: j["status"].update({"active": 1, "startTime": now_iso()}))
    KILLED.key = (ns, pod_name)
    if "launch-test/unschedulable" in annotations:
        msg = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu. preemption: 0/3 nodes are available"
        with LOCK:
            p = update_pod(ns, pod_name, lambda p: p["status"]["conditions"].append(
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": msg,
                 "lastTransitionTime": now_iso()}))
            if p is not None:
                add_event(ns, p, "FailedScheduling", msg, "default-scheduler")
        wait_forever()
        return None, None
    if yield_sleep(0.05):
        return None, None
    bad = [c["image"] for c in containers if "no-such-image" in c["image"]]
    if bad:
        with LOCK:
            p = update_pod(ns, pod_name, set_waiting(
                "ErrImagePull", 'rpc error: code = NotFound desc = failed to pull and unpack image '
                '"%s": not found' % bad[0]))
            if p is not None:
                add_event(ns, p, "Failed", 'Failed to pull image "%s": not found' % bad[0])
        if yield_sleep(0.2):
            return None, None
        with LOCK:
            p = update_pod(ns, pod_name, set_waiting("ImagePullBackOff",
                                                     'Back-off pulling image "%s"' % bad[0]))
            if p is not None:
                add_event(ns, p, "BackOff", 'Back-off pulling image "%s"' % bad[0])
        wait_forever()
        return None, None
    first = containers[0]
    while True:
        with LOCK:
            env, error = container_env(ns, first)
            if error is not None and update_pod(ns, pod_name, set_waiting(
                    "CreateContainerConfigError", error)) is None:
                return None, None
        if error is None:
            break
        if yield_sleep(0.1):
            return None, None
    argv = (first.get("command") or []) + (first.get("args") or [])

    def log(line):
        with LOCK:
            lines = STATE["logs"].get((ns, pod_name))
            if lines is not None:
                lines.append(line)
                LOCK.notify_all()

    def running(p):
        p["status"]["phase"] = "Running"
        p["status"]["startTime"] = p["status"].get("startTime") or now_iso()
        for cs in p["status"]["containerStatuses"]:
            cs["state"] = {"running": {"startedAt": now_iso()}}
            cs["ready"] = True
    restarts = 0
    while True:
        with LOCK:
            if update_pod(ns, pod_name, running) is None:
                return None, None
        code = run_script(argv, env, log) if argv else 0
        if code is None:
            return None, None
        if (code == "evicted" or code == 0 or pod_spec.get("restartPolicy") != "OnFailure" or
                restarts >= spec.get("backoffLimit", 6)):
            break
        restarts += 1
        with LOCK:
            def crashed(p):
                set_waiting("CrashLoopBackOff", "back-off 10s restarting failed container=%s pod=%s"
                            % (first["name"], pod_name))(p)
                p["status"]["containerStatuses"][0]["restartCount"] = restarts
                p["status"]["containerStatuses"][0]["lastState"] = {
                    "terminated": {"exitCode": code, "reason": "Error", "finishedAt": now_iso()}}
            p = update_pod(ns, pod_name, crashed)
            if p is None:
                return None, None
            add_event(ns, p, "BackOff", "Back-off restarting failed container %s in pod %s"
                      % (first["name"], pod_name))
        if yield_sleep(0.3):
            return None, None
    evicted = code == "evicted"
    if evicted:
        code = 137
    with LOCK:
        def ended(p):
            p["status"]["phase"] = "Succeeded" if code == 0 else "Failed"
            if evicted:
                p["status"]["reason"] = "Evicted"
                p["status"]["message"] = "Eviction API: evicting"
                p["status"]["conditions"].append(
                    {"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
                     "message": "Eviction API: evicting", "lastTransitionTime": now_iso()})
            for cs in p["status"]["containerStatuses"]:
                cs["ready"] = False
                cs["state"] = {"terminated": {"exitCode": code,
                                              "reason": "Completed" if code == 0 else "Error",
                                              "startedAt": now_iso(), "finishedAt": now_iso()}}
        if update_pod(ns, pod_name, ended) is None:
            return None, None
    return code, None


def delete_job(ns, name, policy):
    """LOCK held."""
    job = STATE["objects"]["jobs"].get((ns, name))
    if job is None:
        return None
    pods = [k for k, p in STATE["objects"]["pods"].items()
            if k[0] == ns and (p["metadata"].get("labels") or {}).get("job-name") == name]
    if policy == "Foreground":
        def mark(j):
            j["metadata"]["deletionTimestamp"] = now_iso()
            j["metadata"]["finalizers"] = ["foregroundDeletion"]
        job = set_job(ns, name, mark)
        snapshot = json.loads(json.dumps(job))

        def finish():
            with LOCK:
                for k in pods:
                    remove("pods", *k)
            time.sleep(0.05)
            with LOCK:
                remove("jobs", ns, name)
        threading.Thread(target=finish, daemon=True).start()
        return snapshot
    removed = remove("jobs", ns, name)
    if policy != "Orphan":
        for k in pods:
            remove("pods", *k)
    return removed


# ---- HTTP --------------------------------------------------------------------

PATH = re.compile(r"^/(api/v1|apis/batch/v1)(?:/namespaces/([^/]+))?/(jobs|pods|secrets|events)(?:/([^/]+))?(?:/(log))?$")


def discovery(path, port):
    if path == "/version":
        return {"major": "1", "minor": "32", "gitVersion": "v1.32.0-launch-test",
                "gitCommit": "0" * 40, "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
                "goVersion": "go1.23", "compiler": "gc", "platform": "linux/amd64"}
    if path == "/api":
        return {"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                "serverAddress": "127.0.0.1:%d" % port}]}
    if path == "/apis":
        return {"kind": "APIGroupList", "apiVersion": "v1",
                "groups": [{"name": "batch", "versions": [{"groupVersion": "batch/v1", "version": "v1"}],
                            "preferredVersion": {"groupVersion": "batch/v1", "version": "v1"}}]}
    verbs = ["create", "delete", "get", "list", "watch"]
    if path == "/api/v1":
        return {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
            {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod", "verbs": verbs,
             "shortNames": ["po"]},
            {"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod", "verbs": ["get"]},
            {"name": "secrets", "singularName": "secret", "namespaced": True, "kind": "Secret",
             "verbs": verbs},
            {"name": "events", "singularName": "event", "namespaced": True, "kind": "Event",
             "verbs": verbs, "shortNames": ["ev"]}]}
    if path == "/apis/batch/v1":
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "batch/v1", "resources": [
            {"name": "jobs", "singularName": "job", "namespaced": True, "kind": "Job", "verbs": verbs,
             "categories": ["all"]},
            {"name": "jobs/status", "singularName": "", "namespaced": True, "kind": "Job",
             "verbs": ["get"]}]}
    return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_json(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def start_stream(self, content_type):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_stream(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise ApiError(400, "BadRequest", "the body is not JSON")

    def authorized(self):
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer ") and auth[7:] in STATE["tokens"]:
            return True
        try:
            cert = self.connection.getpeercert()
        except (AttributeError, ValueError):
            cert = None
        return bool(cert)

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_DELETE(self):
        self.handle_any("DELETE")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_PATCH(self):
        self.handle_any("PATCH")

    def handle_any(self, method):
        url = urllib.parse.urlsplit(self.path)
        q = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        try:
            if url.path.startswith("/_test/"):
                return self.test_api(method, url.path)
            with LOCK:
                STATE["requests"].append(method + " " + self.path)
            if not self.authorized():
                self.body()
                return self.send_json(401, status(401, "Unauthorized", "Unauthorized"))
            d = discovery(url.path, self.server.server_address[1]) if method == "GET" else None
            if d is not None:
                return self.send_json(200, d)
            m = PATH.match(url.path)
            if not m:
                return self.send_json(404, status(404, "NotFound", "the server could not find the "
                                                  "requested resource"))
            group, ns, resource, name, sub = m.groups()
            if (resource == "jobs") != (group == "apis/batch/v1"):
                return self.send_json(404, status(404, "NotFound", "the server could not find the "
                                                  "requested resource"))
            if sub == "log":
                if resource != "pods" or method != "GET":
                    raise ApiError(405, "MethodNotAllowed", "method not allowed")
                return self.pod_log(ns, name, q)
            if method == "POST" and name is None and ns is not None:
                obj = self.body()
                if not isinstance(obj, dict):
                    raise ApiError(400, "BadRequest", "expected an object")
                with LOCK:
                    return self.send_json(201, create(resource, ns, obj))
            if method == "GET" and name is not None:
                with LOCK:
                    obj = STATE["objects"][resource].get((ns, name))
                    if obj is None:
                        raise ApiError(404, "NotFound", '%s "%s" not found' % (resource, name),
                                       {"name": name, "kind": resource})
                    return self.send_json(200, obj)
            if method == "GET" and q.get("watch") in ("1", "true"):
                return self.watch(resource, ns, q)
            if method == "GET":
                with LOCK:
                    items = [o for o in STATE["objects"][resource].values() if matches(o, ns, q)]
                    items.sort(key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"]))
                    return self.send_json(200, {"kind": RESOURCES[resource]["list"],
                                                "apiVersion": api_version(resource),
                                                "metadata": {"resourceVersion": str(STATE["rv"])},
                                                "items": items})
            if method == "DELETE" and name is not None:
                opts = self.body() or {}
                policy = q.get("propagationPolicy") or opts.get("propagationPolicy") or (
                    "Background" if resource == "jobs" else "")
                with LOCK:
                    STATE["deletes"].append({"resource": resource, "name": name,
                                             "propagationPolicy": policy})
                    if resource == "jobs":
                        obj = delete_job(ns, name, policy)
                    else:
                        obj = remove(resource, ns, name)
                    if obj is None:
                        raise ApiError(404, "NotFound", '%s "%s" not found' % (resource, name),
                                       {"name": name, "kind": resource})
                    return self.send_json(200, obj)
            raise ApiError(405, "MethodNotAllowed", "method %s not allowed here" % method)
        except ApiError as e:
            self.send_json(e.code, e.body)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass

    def watch(self, resource, ns, q):
        rv = q.get("resourceVersion", "")
        bookmarks = q.get("allowWatchBookmarks") in ("1", "true")
        deadline = time.time() + int(q.get("timeoutSeconds") or 1800)
        self.start_stream("application/json")
        with LOCK:
            STATE["watches"][resource] += 1
            generation = STATE["watch_generation"]
            pending = []
            if rv in ("", "0"):
                pending = [("ADDED", o) for o in STATE["objects"][resource].values() if matches(o, ns, q)]
                since = STATE["rv"]
            else:
                since = int(rv)
                if since < STATE["compacted"]:
                    pending = [("ERROR", status(410, "Expired", "too old resource version: %d (%d)"
                                                % (since, STATE["compacted"])))]
        last_bookmark = time.time()
        try:
            while True:
                for typ, obj in pending:
                    self.chunk((json.dumps({"type": typ, "object": obj}) + "\n").encode())
                    if typ == "ERROR":
                        self.end_stream()
                        return
                pending = []
                with LOCK:
                    while True:
                        if STATE["watch_generation"] != generation:
                            # A dropped connection: no terminating chunk.
                            self.close_connection = True
                            self.connection.shutdown(2)
                            return
                        if since < STATE["compacted"]:
                            pending = [("ERROR", status(410, "Expired", "too old resource version"))]
                            break
                        new = [(r, t, o) for (r, res, t, o) in STATE["history"]
                               if r > since and res == resource and matches(o, ns, q)]
                        top = STATE["rv"]
                        if new:
                            pending = [(t, o) for (r, t, o) in new]
                            since = top
                            break
                        since = top
                        if time.time() >= deadline:
                            break
                        if bookmarks and time.time() - last_bookmark >= STATE["bookmark_seconds"]:
                            r = RESOURCES[resource]
                            pending = [("BOOKMARK", {"kind": r["kind"], "apiVersion": api_version(resource),
                                                     "metadata": {"resourceVersion": str(top)}})]
                            last_bookmark = time.time()
                            break
                        LOCK.wait(0.1)
                if not pending and time.time() >= deadline:
                    self.end_stream()
                    return
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            return

    def pod_log(self, ns, name, q):
        follow = q.get("follow") in ("1", "true")
        with LOCK:
            pod = STATE["objects"]["pods"].get((ns, name))
            if pod is None:
                raise ApiError(404, "NotFound", 'pods "%s" not found' % name)
            container = q.get("container") or pod["spec"]["containers"][0]["name"]
            if container not in [c["name"] for c in pod["spec"]["containers"]]:
                raise ApiError(400, "BadRequest", 'container %s is not valid for pod %s' % (container, name))
            if pod["status"]["phase"] == "Pending":
                raise ApiError(400, "BadRequest", 'container "%s" in pod "%s" is waiting to start: '
                               'ContainerCreating' % (container, name))
        self.start_stream("text/plain")
        sent = 0
        try:
            while True:
                with LOCK:
                    lines = STATE["logs"].get((ns, name), [])
                    new = lines[sent:]
                    sent = len(lines)
                    pod = STATE["objects"]["pods"].get((ns, name))
                    done = pod is None or pod["status"]["phase"] in ("Succeeded", "Failed")
                    if not new and not done and follow:
                        LOCK.wait(0.2)
                        continue
                for line in new:
                    self.chunk((line + "\n").encode())
                if not follow or (done and not new):
                    self.end_stream()
                    return
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            return

    def test_api(self, method, path):
        body = self.body() if method == "POST" else None
        with LOCK:
            if path == "/_test/state":
                return self.send_json(200, {
                    "requests": STATE["requests"], "deletes": STATE["deletes"],
                    "watches": STATE["watches"], "rejected": STATE["rejected"],
                    "jobs": {n: o for (ns, n), o in STATE["objects"]["jobs"].items()},
                    "pods": {n: o for (ns, n), o in STATE["objects"]["pods"].items()},
                    "secrets": {n: o for (ns, n), o in STATE["objects"]["secrets"].items()},
                    "rv": STATE["rv"]})
            if path == "/_test/tokens":
                STATE["tokens"].update(body.get("add", []))
                STATE["tokens"].difference_update(body.get("remove", []))
                return self.send_json(200, {})
            if path == "/_test/compact":
                STATE["compacted"] = STATE["rv"]
                STATE["history"] = []
                LOCK.notify_all()
                return self.send_json(200, {"compacted": STATE["compacted"]})
            if path == "/_test/drop-watches":
                STATE["watch_generation"] += 1
                LOCK.notify_all()
                return self.send_json(200, {})
            if path == "/_test/config":
                if "bookmark_seconds" in body:
                    STATE["bookmark_seconds"] = float(body["bookmark_seconds"])
                return self.send_json(200, {})
        self.send_json(404, status(404, "NotFound", path))


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def make_certs(d):
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", d + "/ca.key", "-out", d + "/ca.crt", "-days", "2",
            "-subj", "/CN=launch-test-ca")
    with open(d + "/server.ext", "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    with open(d + "/client.ext", "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    for who in ("server", "client"):
        openssl("req", *ec, "-keyout", "%s/%s.key" % (d, who), "-out", "%s/%s.csr" % (d, who),
                "-subj", "/CN=launch-test-%s" % who)
        openssl("x509", "-req", "-in", "%s/%s.csr" % (d, who), "-CA", d + "/ca.crt", "-CAkey",
                d + "/ca.key", "-CAcreateserial", "-out", "%s/%s.crt" % (d, who), "-days", "2",
                "-extfile", "%s/%s.ext" % (d, who))


def main():
    d = sys.argv[1]
    STATE["tokens"].update(t for t in sys.argv[2].split(",") if t)
    make_certs(d)
    server = Server(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d + "/server.crt", d + "/server.key")
    ctx.load_verify_locations(d + "/ca.crt")
    ctx.verify_mode = ssl.CERT_OPTIONAL
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    sys.stdin.read()
    os._exit(0)


if __name__ == "__main__":
    main()
