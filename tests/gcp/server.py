"""A local stand-in for the Google Cloud APIs launch calls, for tests/gcp.

It checks what it receives against Google's own published definitions,
never against launch's idea of them:
  - every CustomJob body is validated against the aiplatform v1 protos of
    the npm package @google-cloud/aiplatform (tests/node/aiplatform,
    build/protos/google/cloud/aiplatform/v1/*.proto), parsed from their
    text at startup, with the proto3 JSON mapping: field names in
    snake_case or lowerCamelCase, unknown fields, wrong types, unknown enum
    values and two members of one oneof refused with 400 naming the field,
    as Google answers; fields marked REQUIRED must be there;
  - the service-account JWT is verified with the key's public half (RS256,
    python3-cryptography) and its claims (iss, scope, aud, iat, exp), as
    RFC 7523 and Google's token endpoint have them.

Served on one port: the OAuth token endpoint (/token: the jwt-bearer and
refresh_token grants), the metadata server (/computeMetadata/v1/...,
Metadata-Flavor: Google), aiplatform's customJobs (create, get, list with
a labels filter, cancel) with a simulated lifecycle, and Cloud Logging's
entries:list. Every API call needs a token this server issued and that has
not expired (401 otherwise). /_test/... lets a test set token lifetimes,
validate a body, and read what the server saw.

A simulated job takes its fate from its first pool's container env:
SIM_OUTCOME = SUCCEEDED (default) | FAILED | EXPIRED, SIM_SECONDS = how long it runs
(default 1). It is QUEUED, then PENDING, then RUNNING, each a while; its
log gets a line per second and the job's LAUNCH_* variables.

Usage: server.py PROTO_DIR; prints {"port", "project", "sa_key",
"rogue_key", "client_id", "client_secret", "refresh_token"} (the keys are
PEM, made at startup) and serves until stdin closes.
"""
import base64
import datetime
import http.server
import json
import os
import re
import secrets
import socketserver
import sys
import threading
import time
import urllib.parse

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

PROJECT = "launch-test-project"
META_PROJECT = "launch-meta-project"
SA_EMAIL = "launch-agent@launch-test-project.iam.gserviceaccount.com"
SA_KEY_ID = "0123456789abcdef0123456789abcdef01234567"
CLIENT_ID = "launch-test.apps.googleusercontent.com"
CLIENT_SECRET = "launch-test-client-secret"
REFRESH_TOKEN = "1//launch-test-refresh-token"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
LOCK = threading.Lock()

STATE = {
    "lifetime": 3600,   # seconds issued tokens live
    "tokens": {},       # access token -> {expires, source}
    "issued": {"service_account": 0, "authorized_user": 0, "metadata": 0},
    "denied": [],       # reasons for each 401/403
    "invalid": [],      # reasons for each 400
    "calls": [],        # "METHOD path"
    "jobs": {},         # job id -> job
    "bodies": [],       # every CustomJob body received
    "next_id": 1000,
    "throttle": 0,      # how many customJobs.get calls to answer 429 next
    "drop_creates": 0,  # how many creates to make, then drop the connection unanswered
    "log_lag": 1.0,     # seconds before entries:list shows an entry, as Cloud Logging
}


def now():
    return time.time()


def rfc3339(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ")


class ApiError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# ---- the protos

class Field:
    def __init__(self, name, type_, label, oneof, options, scope):
        self.name, self.type, self.label, self.oneof = name, type_, label, oneof
        self.options, self.scope = options, scope
        self.required = "REQUIRED" in options and "field_behavior" in options
        self.json_name = re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), name)


class Message:
    def __init__(self, full):
        self.full, self.fields = full, {}


class Enum:
    def __init__(self, full):
        self.full, self.values = full, {}


TYPES = {}  # full name ("google.cloud.aiplatform.v1.CustomJob") -> Message | Enum


def tokenize(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    return re.findall(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|[A-Za-z_][\w.]*|-?\d[\w.]*|\S',
                      text)


def skip_statement(toks, i):
    """From toks[i], past the next ';' at brace depth 0 (or a {...} block)."""
    depth = 0
    while i < len(toks):
        t = toks[i]
        i += 1
        if t == "{":
            depth += 1
        elif t == "}":
            depth -= 1
            if depth == 0:
                if i < len(toks) and toks[i] == ";":
                    i += 1
                return i
        elif t == ";" and depth == 0:
            return i
    return i


def parse_options(toks, i):
    """toks[i] == '[': the text of the options up to the matching ']'."""
    depth, out = 0, []
    while i < len(toks):
        t = toks[i]
        i += 1
        if t == "[":
            depth += 1
        elif t == "]":
            depth -= 1
            if depth == 0:
                return " ".join(out), i
        out.append(t)
    raise ValueError("unterminated options")


def parse_block(toks, i, scope, msg, oneof=None):
    """Parses a message body (or a oneof's) from toks[i] up to its '}'."""
    while i < len(toks):
        t = toks[i]
        if t == "}":
            return i + 1
        if t in ("option", "reserved", "extensions", "extend", "import", "syntax", "package"):
            i = skip_statement(toks, i)
        elif t == ";":
            i += 1
        elif t == "message":
            i = parse_message(toks, i, scope)
        elif t == "enum":
            i = parse_enum(toks, i, scope)
        elif t == "oneof":
            name = toks[i + 1]
            assert toks[i + 2] == "{"
            i = parse_block(toks, i + 3, scope, msg, oneof=name)
        else:
            label = None
            if t in ("repeated", "optional", "required"):
                label = t
                i += 1
            if toks[i] == "map":
                # map < K , V > name = N
                key, value = toks[i + 2], toks[i + 4]
                type_ = ("map", key, value)
                i += 6
            else:
                type_ = toks[i]
                i += 1
            name = toks[i]
            assert toks[i + 1] == "=", (scope, name, toks[i:i + 4])
            i += 3
            options = ""
            if toks[i] == "[":
                options, i = parse_options(toks, i)
            assert toks[i] == ";", (scope, name, toks[i])
            i += 1
            msg.fields[name] = Field(name, type_, label, oneof, options, scope)
    return i


def parse_message(toks, i, scope):
    name = toks[i + 1]
    full = scope + "." + name
    msg = Message(full)
    TYPES[full] = msg
    assert toks[i + 2] == "{"
    return parse_block(toks, i + 3, full, msg)


def parse_enum(toks, i, scope):
    name = toks[i + 1]
    full = scope + "." + name
    enum = Enum(full)
    TYPES[full] = enum
    i += 3
    while toks[i] != "}":
        if toks[i] in ("option", "reserved"):
            i = skip_statement(toks, i)
            continue
        value_name, number = toks[i], toks[i + 2]
        enum.values[value_name] = int(number)
        i += 3
        if toks[i] == "[":
            _, i = parse_options(toks, i)
        assert toks[i] == ";"
        i += 1
    return i + 1


def parse_file(path):
    toks = tokenize(open(path, encoding="utf-8").read())
    package = ""
    i = 0
    while i < len(toks):
        t = toks[i]
        if t == "package":
            package = toks[i + 1]
            i += 3
        elif t == "message":
            i = parse_message(toks, i, package)
        elif t == "enum":
            i = parse_enum(toks, i, package)
        elif t == "service":
            i = skip_statement(toks, i)
        else:
            i = skip_statement(toks, i)


def resolve(type_name, scope):
    """A type name as protoc resolves it: innermost scope outwards."""
    if type_name.startswith("."):
        return TYPES.get(type_name[1:])
    parts = scope.split(".")
    while parts:
        t = TYPES.get(".".join(parts) + "." + type_name)
        if t is not None:
            return t
        parts.pop()
    return TYPES.get(type_name)


INT32 = {"int32", "sint32", "sfixed32", "uint32", "fixed32"}
INT64 = {"int64", "sint64", "sfixed64", "uint64", "fixed64"}
WRAPPERS = {"google.protobuf.StringValue": "string", "google.protobuf.BoolValue": "bool",
            "google.protobuf.Int32Value": "int32", "google.protobuf.Int64Value": "int64",
            "google.protobuf.UInt32Value": "uint32", "google.protobuf.UInt64Value": "uint64",
            "google.protobuf.DoubleValue": "double", "google.protobuf.FloatValue": "float",
            "google.protobuf.BytesValue": "bytes"}
DURATION = re.compile(r"^-?\d+(\.\d{1,9})?s$")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$")


def bad(path, value, expected):
    raise ApiError(400, "INVALID_ARGUMENT",
                   f"Invalid value at '{path}' ({expected}), {json.dumps(value)}")


def check_scalar(type_, value, path):
    if type_ == "string":
        if not isinstance(value, str):
            bad(path, value, "TYPE_STRING")
    elif type_ == "bool":
        if not isinstance(value, bool):
            bad(path, value, "TYPE_BOOL")
    elif type_ in INT32 or type_ in INT64:
        ok = (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, str) and re.fullmatch(r"-?\d+", value))
        if isinstance(value, float) and value.is_integer():
            ok = True
        if not ok:
            bad(path, value, "TYPE_" + type_.upper())
        n = int(value)
        if type_.startswith("u") or type_.startswith("fixed"):
            if n < 0:
                bad(path, value, "TYPE_" + type_.upper())
        limit = 2 ** 31 if type_ in INT32 else 2 ** 63
        if not -limit <= n < (2 * limit if type_.startswith(("u", "fixed")) else limit):
            bad(path, value, "TYPE_" + type_.upper())
    elif type_ in ("double", "float"):
        if not ((isinstance(value, (int, float)) and not isinstance(value, bool)) or
                value in ("NaN", "Infinity", "-Infinity")):
            bad(path, value, "TYPE_" + type_.upper())
    elif type_ == "bytes":
        try:
            if not isinstance(value, str):
                raise ValueError
            base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_"
                             if "-" in value or "_" in value else None, validate=True)
        except Exception:
            bad(path, value, "TYPE_BYTES")
    else:
        return False
    return True


def check_value(type_, scope, value, path):
    """One (non-repeated) value of proto type `type_` at `path`."""
    if value is None:
        return  # null is the field's default in the JSON mapping
    if isinstance(type_, str) and check_scalar(type_, value, path):
        return
    t = resolve(type_, scope)
    full = t.full if t is not None else type_
    if full in WRAPPERS:
        check_scalar(WRAPPERS[full], value, path)
        return
    if full == "google.protobuf.Duration":
        if not isinstance(value, str) or not DURATION.match(value):
            bad(path, value, "google.protobuf.Duration")
        return
    if full == "google.protobuf.Timestamp":
        if not isinstance(value, str) or not TIMESTAMP.match(value):
            bad(path, value, "google.protobuf.Timestamp")
        return
    if full == "google.protobuf.Struct":
        if not isinstance(value, dict):
            bad(path, value, "google.protobuf.Struct")
        return
    if full == "google.protobuf.Value":
        return
    if full == "google.protobuf.ListValue":
        if not isinstance(value, list):
            bad(path, value, "google.protobuf.ListValue")
        return
    if full == "google.protobuf.FieldMask":
        if not isinstance(value, str):
            bad(path, value, "google.protobuf.FieldMask")
        return
    if full == "google.protobuf.Empty":
        if value != {}:
            bad(path, value, "google.protobuf.Empty")
        return
    if t is None:
        raise ApiError(500, "INTERNAL", f"test server: the protos have no type {type_} "
                                        f"(at '{path}')")
    if isinstance(t, Enum):
        if isinstance(value, str):
            if value not in t.values:
                bad(path, value, "TYPE_ENUM " + t.full)
        elif not (isinstance(value, int) and not isinstance(value, bool)):
            bad(path, value, "TYPE_ENUM " + t.full)
        return
    check_message(t, value, path)


def check_message(msg, value, path):
    if not isinstance(value, dict):
        bad(path, value, "TYPE_MESSAGE " + msg.full)
    by_json = {f.json_name: f for f in msg.fields.values()}
    seen, oneofs = {}, {}
    for key, v in value.items():
        f = msg.fields.get(key) or by_json.get(key)
        if f is None:
            raise ApiError(400, "INVALID_ARGUMENT",
                           f"Invalid JSON payload received. Unknown name \"{key}\" at "
                           f"'{path}': Cannot find field.")
        if f.name in seen:
            raise ApiError(400, "INVALID_ARGUMENT",
                           f"Invalid JSON payload received. Field '{path}.{f.name}' is given "
                           f"twice (as \"{seen[f.name]}\" and \"{key}\").")
        seen[f.name] = key
        if v is None:
            continue
        if f.oneof:
            if f.oneof in oneofs:
                raise ApiError(400, "INVALID_ARGUMENT",
                               f"Invalid JSON payload received. Fields '{oneofs[f.oneof]}' and "
                               f"'{f.name}' at '{path}' are both in oneof {f.oneof}.")
            oneofs[f.oneof] = f.name
        fpath = f"{path}.{f.name}"
        if isinstance(f.type, tuple):
            _, ktype, vtype = f.type
            if not isinstance(v, dict):
                bad(fpath, v, "map")
            for mk, mv in v.items():
                if ktype in INT32 or ktype in INT64:
                    check_scalar(ktype, mk, f"{fpath}[{mk}]")
                check_value(vtype, f.scope, mv, f"{fpath}[{mk}]")
        elif f.label == "repeated":
            if not isinstance(v, list):
                bad(fpath, v, "TYPE_LIST")
            for n, e in enumerate(v):
                check_value(f.type, f.scope, e, f"{fpath}[{n}]")
        else:
            check_value(f.type, f.scope, v, fpath)
    for f in msg.fields.values():
        if f.required and value.get(f.name) in (None, "", [], {}) and \
                value.get(f.json_name) in (None, "", [], {}):
            raise ApiError(400, "INVALID_ARGUMENT",
                           f"Required field '{path}.{f.name}' is missing or empty.")


def field(obj, name):
    """A member of a proto JSON object under either of its names."""
    camel = re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), name)
    if name in obj:
        return obj[name]
    return obj.get(camel)


LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")


def validate_custom_job(body):
    check_message(TYPES["google.cloud.aiplatform.v1.CustomJob"], body, "custom_job")
    # Rules Google documents beyond the protos' types.
    labels = field(body, "labels") or {}
    if len(labels) > 64:
        raise ApiError(400, "INVALID_ARGUMENT", "custom_job.labels: at most 64 labels")
    for k, v in labels.items():
        if not LABEL_KEY.match(k) or k.startswith("goog"):
            raise ApiError(400, "INVALID_ARGUMENT", f"custom_job.labels: invalid key {k!r}")
        if not LABEL_VALUE.match(v):
            raise ApiError(400, "INVALID_ARGUMENT",
                           f"custom_job.labels[{k}]: invalid value {v!r} (lowercase letters, "
                           f"digits, - and _, at most 63)")
    if len(field(body, "display_name")) > 128:
        raise ApiError(400, "INVALID_ARGUMENT", "custom_job.display_name: longer than 128")
    pools = field(field(body, "job_spec"), "worker_pool_specs") or []
    if not pools:
        raise ApiError(400, "INVALID_ARGUMENT",
                       "custom_job.job_spec.worker_pool_specs: at least one is required")
    for n, p in enumerate(pools):
        path = f"custom_job.job_spec.worker_pool_specs[{n}]"
        ms = field(p, "machine_spec") or {}
        if not field(ms, "machine_type"):
            raise ApiError(400, "INVALID_ARGUMENT", f"{path}.machine_spec.machine_type is required")
        if n == 0 and int(field(p, "replica_count") or 0) != 1:
            raise ApiError(400, "INVALID_ARGUMENT",
                           f"{path}.replica_count: the first pool (chief) must have 1 replica")
        if field(p, "container_spec") is None and field(p, "python_package_spec") is None:
            raise ApiError(400, "INVALID_ARGUMENT", f"{path}: container_spec or "
                                                    f"python_package_spec is required")


# ---- tokens

def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def issue(source):
    token = "ya29." + source + "." + secrets.token_urlsafe(16)
    with LOCK:
        STATE["tokens"][token] = {"expires": now() + STATE["lifetime"], "source": source}
        STATE["issued"][source] += 1
        lifetime = STATE["lifetime"]
    return {"access_token": token, "expires_in": lifetime, "token_type": "Bearer"}


def oauth_error(error, description, status=400):
    e = ApiError(status, error, description)
    e.oauth = True
    return e


def token_endpoint(form, token_uri):
    grant = form.get("grant_type", "")
    if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
        jwt = form.get("assertion", "")
        parts = jwt.split(".")
        if len(parts) != 3:
            raise oauth_error("invalid_grant", "assertion is not a JWT")
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            sig = b64url_decode(parts[2])
        except Exception as e:
            raise oauth_error("invalid_grant", f"assertion does not decode: {e}")
        if header.get("alg") != "RS256":
            raise oauth_error("invalid_grant", f"alg {header.get('alg')!r} is not RS256")
        if header.get("kid") not in (None, SA_KEY_ID):
            raise oauth_error("invalid_grant", f"kid {header.get('kid')!r} is not a key of "
                                               f"{SA_EMAIL}")
        try:
            SA_PUBLIC.verify(sig, (parts[0] + "." + parts[1]).encode(), padding.PKCS1v15(),
                             hashes.SHA256())
        except InvalidSignature:
            raise oauth_error("invalid_grant", "Invalid JWT Signature.")
        t = now()
        if claims.get("iss") != SA_EMAIL:
            raise oauth_error("invalid_grant", f"iss {claims.get('iss')!r} is not {SA_EMAIL}")
        if SCOPE not in str(claims.get("scope", "")).split():
            raise oauth_error("invalid_scope", f"scope {claims.get('scope')!r} lacks {SCOPE}")
        if claims.get("aud") != token_uri:
            raise oauth_error("invalid_grant", f"aud {claims.get('aud')!r} is not {token_uri}")
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int):
            raise oauth_error("invalid_grant", "iat and exp must be integers")
        if abs(iat - t) > 300:
            raise oauth_error("invalid_grant", f"iat {iat} is not now ({int(t)})")
        if exp <= t or exp - iat > 3600:
            raise oauth_error("invalid_grant", f"exp {exp}: expired or more than 3600 s after iat")
        return issue("service_account")
    if grant == "refresh_token":
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            raise oauth_error("invalid_client", "The OAuth client was not found.", 401)
        if form.get("refresh_token") != REFRESH_TOKEN:
            raise oauth_error("invalid_grant", "Token has been expired or revoked.")
        return issue("authorized_user")
    raise oauth_error("unsupported_grant_type", f"grant_type {grant!r}")


def authorize(handler):
    auth = handler.headers.get("Authorization", "")
    if not auth.startswith("Bearer "):
        raise ApiError(401, "UNAUTHENTICATED", "Request is missing required authentication "
                                               "credential.")
    token = auth[7:]
    with LOCK:
        info = STATE["tokens"].get(token)
    if info is None:
        raise ApiError(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
    if info["expires"] <= now():
        raise ApiError(401, "UNAUTHENTICATED",
                       f"Request had invalid authentication credentials: the token expired "
                       f"{now() - info['expires']:.2f} s ago.")
    return info


# ---- the simulated jobs

PHASES = [("JOB_STATE_QUEUED", 0.3), ("JOB_STATE_PENDING", 0.3)]


def job_env(job):
    pools = field(field(job["body"], "job_spec"), "worker_pool_specs")
    cs = field(pools[0], "container_spec") or {}
    return {e["name"]: e.get("value", "") for e in (field(cs, "env") or [])}


def job_state(job):
    """Moves a job along its lifecycle; returns it as Google shows it."""
    t = now()
    env = job_env(job)
    seconds = float(env.get("SIM_SECONDS", "1"))
    outcome = env.get("SIM_OUTCOME", "SUCCEEDED")
    start = job["created"]
    state = None
    for name, length in PHASES:
        if t < start + length:
            state = name
            break
        start += length
    run_start = start
    if job.get("cancel_at") is not None:
        if t < job["cancel_at"] + 0.3:
            state = "JOB_STATE_CANCELLING"
        else:
            state = "JOB_STATE_CANCELLED"
            job["end"] = job.get("end") or job["cancel_at"] + 0.3
    elif state is None:
        if t < run_start + seconds:
            state = "JOB_STATE_RUNNING"
        else:
            state = {"FAILED": "JOB_STATE_FAILED", "EXPIRED": "JOB_STATE_EXPIRED"}.get(
                outcome, "JOB_STATE_SUCCEEDED")
            job["end"] = job.get("end") or run_start + seconds
    job["run_start"] = run_start
    out = camel(job["body"])
    out.update({"name": job["name"], "state": state, "createTime": rfc3339(job["created"]),
                "updateTime": rfc3339(t)})
    if state in ("JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED"):
        out["startTime"] = rfc3339(run_start)
    if job.get("end"):
        out["endTime"] = rfc3339(job["end"])
    if state == "JOB_STATE_FAILED":
        out["error"] = {"code": 3, "message": "The replica workerpool0-0 exited with a non-zero "
                                              "status of 1. Termination reason: Error."}
    job["state"] = state
    return out


def camel(value, is_map=False):
    """A body as Google answers it: every field in lowerCamelCase (a map's
    keys, labels', are the user's)."""
    if isinstance(value, list):
        return [camel(v) for v in value]
    if not isinstance(value, dict):
        return value
    if is_map:
        return dict(value)
    out = {}
    for k, v in value.items():
        name = re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), k)
        out[name] = camel(v, name in ("labels", "webAccessUris"))
    return out


def job_log(job):
    """The entries the job has written by now (ml_job resource, job_id label)."""
    job_state(job)
    t = now()
    env = job_env(job)
    entries = []

    def add(at, text):
        if at + STATE["log_lag"] <= t:
            entries.append({"insertId": f"{job['id']}-{len(entries)}",
                            "logName": f"projects/{job['project']}/logs/workerpool0-0",
                            "resource": {"type": "ml_job", "labels": {
                                "job_id": job["id"], "project_id": job["project"],
                                "task_name": "workerpool0-0"}},
                            "timestamp": rfc3339(at), "severity": "INFO",
                            "textPayload": text})

    start = job["run_start"]
    if job["state"] in ("JOB_STATE_QUEUED", "JOB_STATE_PENDING"):
        return entries
    # Two lines at the same instant: the runner must not lose or repeat one.
    for k in sorted(k for k in env if k.startswith("LAUNCH_")):
        add(start, f"{k}={env[k]}")
    end = job.get("end") or t
    n = 0
    while start + n + 0.5 < end:
        add(start + n + 0.5, f"step {n}")
        n += 1
    if job["state"] in ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED"):
        add(job["end"], f"done: {job['state']}")
    return entries


def parse_list_filter(text):
    """customJobs.list's filter: `labels.KEY="VALUE"` and `display_name="X"`
    terms joined by AND (the subset of AIP-160 this server understands)."""
    terms = {}
    for term in re.split(r"\s+AND\s+", text.strip()):
        m = re.fullmatch(r'(labels\.[a-z][a-z0-9_-]*|display_name)\s*=\s*"([^"]*)"', term)
        if not m:
            raise ApiError(400, "INVALID_ARGUMENT", f"Unsupported filter term {term!r}")
        terms[m.group(1)] = m.group(2)
    return terms


def parse_log_filter(text):
    """entries:list's filter: resource.type, resource.labels.job_id and
    timestamp>= terms joined by AND."""
    out = {}
    for term in re.split(r"\s+AND\s+", text.strip()):
        m = re.fullmatch(r'(resource\.type|resource\.labels\.job_id|timestamp)\s*(=|>=)\s*"([^"]*)"',
                         term)
        if not m or (m.group(1) == "timestamp") != (m.group(2) == ">="):
            raise ApiError(400, "INVALID_ARGUMENT", f"Unsupported filter term {term!r}")
        out[m.group(1)] = m.group(3)
    return out


def parse_time(s):
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z", s)
    if not m:
        raise ApiError(400, "INVALID_ARGUMENT", f"Invalid timestamp {s!r}")
    base = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    return base + (float(m.group(2)) if m.group(2) else 0.0)


# ---- HTTP

JOB_PATH = re.compile(r"^/v1/projects/([^/]+)/locations/([^/]+)/customJobs(?:/(\d+))?(:cancel)?$")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, ctype="application/json"):
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length", "0"))
        return self.rfile.read(n) if n else b""

    def token_uri(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}/token"

    def handle_error(self, e):
        if getattr(e, "oauth", False):
            body = {"error": e.code, "error_description": e.message}
        else:
            body = {"error": {"code": e.status, "message": e.message, "status": e.code}}
        with LOCK:
            key = "denied" if e.status in (401, 403) else "invalid" if e.status == 400 else None
            if key:
                STATE[key].append(f"{self.command} {self.path}: {e.message}")
        self.reply(e.status, body)

    def do_GET(self):
        self.dispatch(b"")

    def do_POST(self):
        self.dispatch(self.body())

    def dispatch(self, raw):
        url = urllib.parse.urlsplit(self.path)
        with LOCK:
            STATE["calls"].append(f"{self.command} {url.path}")
        try:
            if url.path.startswith("/_test/"):
                return self.test_api(url.path, raw)
            if url.path == "/token" and self.command == "POST":
                form = dict(urllib.parse.parse_qsl(raw.decode()))
                return self.reply(200, token_endpoint(form, self.token_uri()))
            if url.path.startswith("/computeMetadata/"):
                return self.metadata(url.path)
            authorize(self)
            if url.path == "/v2/entries:list" and self.command == "POST":
                return self.reply(200, self.entries_list(self.json_body(raw)))
            m = JOB_PATH.match(url.path)
            if m:
                return self.jobs(m, dict(urllib.parse.parse_qsl(url.query)), raw)
            raise ApiError(404, "NOT_FOUND", f"no such method {self.command} {url.path}")
        except ApiError as e:
            self.handle_error(e)

    def json_body(self, raw):
        try:
            body = json.loads(raw or b"{}")
        except ValueError as e:
            raise ApiError(400, "INVALID_ARGUMENT", f"Invalid JSON payload received. {e}")
        if not isinstance(body, dict):
            raise ApiError(400, "INVALID_ARGUMENT", "Invalid JSON payload received: not an object")
        return body

    def metadata(self, path):
        if self.headers.get("Metadata-Flavor") != "Google":
            raise ApiError(403, "FORBIDDEN", "Missing required header: Metadata-Flavor")
        if path == "/computeMetadata/v1/instance/service-accounts/default/token":
            return self.reply(200, issue("metadata"))
        if path == "/computeMetadata/v1/project/project-id":
            return self.reply(200, META_PROJECT, "application/text")
        raise ApiError(404, "NOT_FOUND", path)

    def jobs(self, m, query, raw):
        project, region, job_id, cancel = m.groups()
        if project not in (PROJECT, META_PROJECT):
            raise ApiError(403, "PERMISSION_DENIED",
                           f"Permission 'aiplatform.customJobs.create' denied on resource "
                           f"'//aiplatform.googleapis.com/projects/{project}'")
        if job_id is None and self.command == "POST" and not cancel:
            body = self.json_body(raw)
            with LOCK:
                STATE["bodies"].append(body)
            validate_custom_job(body)
            with LOCK:
                jid = str(STATE["next_id"])
                STATE["next_id"] += 1
                job = {"id": jid, "project": project, "region": region, "body": body,
                       "created": now(),
                       "name": f"projects/{project}/locations/{region}/customJobs/{jid}"}
                STATE["jobs"][jid] = job
                if STATE["drop_creates"] > 0:
                    STATE["drop_creates"] -= 1
                    self.close_connection = True
                    return None  # the job is made; its answer is lost
                return self.reply(200, job_state(job))
        if job_id is None and self.command == "GET":
            terms = parse_list_filter(query.get("filter", "")) if query.get("filter") else {}
            size = int(query.get("pageSize", "100"))
            start = int(query.get("pageToken") or "0")
            with LOCK:
                found = []
                for jid in sorted(STATE["jobs"]):
                    job = STATE["jobs"][jid]
                    if job["project"] != project or job["region"] != region:
                        continue
                    labels = field(job["body"], "labels") or {}
                    ok = all((labels.get(k[7:]) == v) if k.startswith("labels.")
                             else field(job["body"], "display_name") == v
                             for k, v in terms.items())
                    if ok:
                        found.append(job_state(job))
            out = {"customJobs": found[start:start + size]}
            if start + size < len(found):
                out["nextPageToken"] = str(start + size)
            return self.reply(200, out)
        with LOCK:
            job = STATE["jobs"].get(job_id)
            if job is None or job["project"] != project or job["region"] != region:
                raise ApiError(404, "NOT_FOUND", f"CustomJob {job_id} does not exist")
            if self.command == "GET" and not cancel:
                if STATE["throttle"] > 0:
                    STATE["throttle"] -= 1
                    raise ApiError(429, "RESOURCE_EXHAUSTED",
                                   "Quota exceeded for aiplatform.googleapis.com/"
                                   "get_requests_per_minute_per_project")
                return self.reply(200, job_state(job))
            if self.command == "POST" and cancel:
                state = job_state(job)["state"]
                if state in ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"):
                    raise ApiError(400, "FAILED_PRECONDITION",
                                   f"Cannot cancel CustomJob {job_id}: it is in state {state}")
                job["cancel_at"] = now()
                return self.reply(200, {})
        raise ApiError(404, "NOT_FOUND", self.path)

    def entries_list(self, body):
        allowed = {"resourceNames", "resource_names", "filter", "orderBy", "order_by",
                   "pageSize", "page_size", "pageToken", "page_token"}
        for k in body:
            if k not in allowed:
                raise ApiError(400, "INVALID_ARGUMENT",
                               f"Invalid JSON payload received. Unknown name \"{k}\": Cannot "
                               f"find field.")
        names = field(body, "resource_names") or []
        terms = parse_log_filter(body.get("filter", ""))
        if terms.get("resource.type") != "ml_job" or "resource.labels.job_id" not in terms:
            raise ApiError(400, "INVALID_ARGUMENT", "this server answers only ml_job queries by "
                                                    "job_id")
        order = field(body, "order_by") or "timestamp asc"
        if order != "timestamp asc":
            raise ApiError(400, "INVALID_ARGUMENT", f"orderBy {order!r}")
        size = int(field(body, "page_size") or 50)
        if not 1 <= size <= 1000:
            raise ApiError(400, "INVALID_ARGUMENT", f"pageSize {size} must be 1..1000")
        with LOCK:
            job = STATE["jobs"].get(terms["resource.labels.job_id"])
            if job is None:
                return {}
            if f"projects/{job['project']}" not in names:
                raise ApiError(400, "INVALID_ARGUMENT",
                               f"resourceNames {names} does not name projects/{job['project']}")
            entries = job_log(job)
        if "timestamp" in terms:
            since = parse_time(terms["timestamp"])
            entries = [e for e in entries if parse_time(e["timestamp"]) >= since - 1e-7]
        start = int(field(body, "page_token") or "0")
        out = {"entries": entries[start:start + size]}
        if start + size < len(entries):
            out["nextPageToken"] = str(start + size)
        return out

    def test_api(self, path, raw):
        if path == "/_test/state":
            with LOCK:
                out = {k: STATE[k] for k in ("issued", "denied", "invalid", "calls", "bodies",
                                             "throttle")}
                out["jobs"] = {jid: job_state(j) for jid, j in STATE["jobs"].items()}
            return self.reply(200, out)
        if path == "/_test/config":
            body = json.loads(raw or b"{}")
            with LOCK:
                if "lifetime" in body:
                    STATE["lifetime"] = int(body["lifetime"])
                if "log_lag" in body:
                    STATE["log_lag"] = float(body["log_lag"])
                if "drop_creates" in body:
                    STATE["drop_creates"] = int(body["drop_creates"])
                if "throttle" in body:
                    STATE["throttle"] = int(body["throttle"])
            return self.reply(200, {})
        if path == "/_test/validate":
            # The validator alone, on any body: tests prove it refuses.
            try:
                validate_custom_job(json.loads(raw))
            except ApiError as e:
                return self.reply(200, {"ok": False, "message": e.message})
            return self.reply(200, {"ok": True})
        if path == "/_test/cancel-outside":
            # Someone cancels the job in the console.
            jid = json.loads(raw)["id"]
            with LOCK:
                STATE["jobs"][jid]["cancel_at"] = now()
            return self.reply(200, {})
        raise ApiError(404, "NOT_FOUND", path)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def main():
    global SA_PUBLIC
    proto_dir = sys.argv[1]
    if not os.path.isdir(proto_dir):
        # Not JSON: the test's PythonServer reports this line as it is.
        sys.stdout.write(f"{proto_dir} is missing: run scripts/setup (npm ci in "
                         f"tests/node/aiplatform)\n")
        sys.exit(1)
    for name in sorted(os.listdir(proto_dir)):
        if name.endswith(".proto"):
            parse_file(os.path.join(proto_dir, name))
    if "google.cloud.aiplatform.v1.CustomJob" not in TYPES:
        sys.stdout.write(f"no google.cloud.aiplatform.v1.CustomJob in {proto_dir}\n")
        sys.exit(1)
    sa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rogue = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    SA_PUBLIC = sa.public_key()
    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdout.write(json.dumps({
        "port": server.server_address[1], "project": PROJECT, "meta_project": META_PROJECT,
        "sa_email": SA_EMAIL, "sa_key_id": SA_KEY_ID, "sa_key": pem(sa), "rogue_key": pem(rogue),
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH_TOKEN}) + "\n")
    sys.stdout.flush()
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
