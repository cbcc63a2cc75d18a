"""A local stand-in for the AWS APIs launch calls, for tests/aws.

It checks what it receives against AWS's own published definitions, never
against launch's idea of them:
  - every signed request is verified with botocore's SigV4 signer (Debian's
    python3-botocore), and a wrong, expired or unknown signature gets 403
    as AWS answers it;
  - every request body is validated against botocore's service models
    (botocore/data/{sagemaker,ecr,sts,logs}/*/service-2.json): required
    members, types, lengths and ranges (botocore's ParamValidator), and the
    patterns and enums it does not check itself.

Served on one port: STS (GetCallerIdentity, AssumeRole,
AssumeRoleWithWebIdentity), SageMaker (CreateTrainingJob,
DescribeTrainingJob with a simulated lifecycle, StopTrainingJob,
ListTrainingJobs), CloudWatch Logs (DescribeLogStreams, GetLogEvents), ECR
(GetAuthorizationToken, DescribeImages), the container-credentials endpoint
(/container-credentials) and IMDSv2 (/latest/...). /_test/... lets a test
set the credentials' lifetime and read what the server saw.

A simulated training job takes its fate from its Environment:
SIM_OUTCOME = Completed (default) | Failed | Spot (a spot interruption
of the first run, LAUNCH_RESUME_COUNT 0; a resumed run completes), SIM_SECONDS = how long
it trains (default 1). Its log stream gets a line per second and the
job's LAUNCH_* variables.

Usage: server.py ACCESS_KEY SECRET_KEY WEB_IDENTITY_TOKEN CONTAINER_TOKEN;
prints {"port": N} and serves until stdin closes.
"""
import base64
import datetime
import http.server
import json
import re
import secrets
import socketserver
import sys
import threading
import time
import urllib.parse

import botocore.session
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.validate import ParamValidator

ACCOUNT = "123456789012"
ROLE_NAME = "launch-test-role"
LOCK = threading.Lock()

STATE = {
    "lifetime": 3600,        # seconds temporary credentials live
    "keys": {},              # access key -> {secret, token, expires, arn}
    "issued": {"sts": 0, "web": 0, "container": 0, "imds": 0},
    "denied": [],            # reasons for each 403
    "invalid": [],           # reasons for each 400 from the models
    "calls": [],             # "service.Operation"
    "jobs": {},              # TrainingJobName -> job
    "streams": {},           # stream name -> [events]
    "images": {},            # repo -> {tag: digest}
    "imds_tokens": set(),
    "throttle": 0,           # how many DescribeTrainingJob calls to throttle next
}

SESSION = botocore.session.get_session()
MODELS = {name: SESSION.get_service_model(name) for name in ("sagemaker", "ecr", "sts", "logs")}
TARGETS = {m.metadata["targetPrefix"]: n for n, m in MODELS.items() if "targetPrefix" in m.metadata}

P_CLASSES = {r"\p{L}": "A-Za-z\u00aa-\uffff", r"\p{Z}": " \u00a0\u2000-\u200a\u3000",
             r"\p{N}": "0-9", r"\p{M}": "\u0300-\u036f"}


class ApiError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def now():
    return time.time()


def iso(t):
    return datetime.datetime.utcfromtimestamp(t).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- validation against the service models

def check_patterns(shape, value, path, errors):
    """Patterns and enums, which botocore's ParamValidator leaves out."""
    t = shape.type_name
    if t == "structure" and isinstance(value, dict):
        for k, v in value.items():
            if k in shape.members:
                check_patterns(shape.members[k], v, path + "." + k, errors)
    elif t == "list" and isinstance(value, list):
        for i, v in enumerate(value):
            check_patterns(shape.member, v, "%s[%d]" % (path, i), errors)
    elif t == "map" and isinstance(value, dict):
        for k, v in value.items():
            check_patterns(shape.key, k, path + " key", errors)
            check_patterns(shape.value, v, "%s[%s]" % (path, k), errors)
    elif t == "string" and isinstance(value, str):
        enum = shape.metadata.get("enum")
        if enum and value not in enum:
            errors.append("%s: %r is not one of %s" % (path, value, enum))
        pattern = shape.metadata.get("pattern")
        if pattern:
            for k, v in P_CLASSES.items():
                pattern = pattern.replace(k, v)
            if re.fullmatch(pattern, value, re.S) is None and re.match(pattern + r"\Z", value, re.S) is None:
                errors.append("%s: %r does not match the pattern %s" % (path, value, shape.metadata["pattern"]))


def validate(service, operation, params):
    op = MODELS[service].operation_model(operation)
    report = ParamValidator().validate(params, op.input_shape)
    errors = []
    if report.has_errors():
        errors.append(report.generate_report())
    check_patterns(op.input_shape, params, operation, errors)
    if errors:
        msg = "; ".join(errors)
        STATE["invalid"].append(msg)
        raise ApiError(400, "ValidationException", msg)


def query_params(service, operation, form):
    """A Query-protocol form (STS) as typed parameters, by the model."""
    shape = MODELS[service].operation_model(operation).input_shape
    out = {}
    for k, v in form.items():
        if k in ("Action", "Version"):
            continue
        m = shape.members.get(k) if shape else None
        if m is None:
            raise ApiError(400, "InvalidParameterValue", "unknown parameter %s" % k)
        out[k] = int(v) if m.type_name in ("integer", "long") else v
    return out


# ---- signatures

def verify(handler, body):
    auth = handler.headers.get("Authorization", "")
    m = re.fullmatch(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                     r"SignedHeaders=([a-z0-9;\-]+), Signature=([0-9a-f]{64})", auth)
    if not m:
        deny("IncompleteSignature", "no SigV4 Authorization header: %r" % auth[:80])
    key, day, region, service, signed, signature = m.groups()
    with LOCK:
        k = STATE["keys"].get(key)
    if k is None:
        deny("InvalidClientTokenId", "The security token included in the request is invalid.")
    if k["expires"] is not None and now() >= k["expires"]:
        deny("ExpiredToken", "The security token included in the request is expired")
    if k["token"] and handler.headers.get("X-Amz-Security-Token") != k["token"]:
        deny("InvalidClientTokenId", "The security token included in the request is invalid.")
    amz_date = handler.headers.get("X-Amz-Date", "")
    try:
        t = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        deny("IncompleteSignature", "X-Amz-Date %r is not a SigV4 date" % amz_date)
    if abs(t.timestamp() - now()) > 300 or amz_date[:8] != day:
        deny("SignatureDoesNotMatch", "Signature expired: %s is not within 5 minutes of now" % amz_date)
    names = signed.split(";")
    if "host" not in names or "x-amz-date" not in names:
        deny("SignatureDoesNotMatch", "host and x-amz-date must be signed")
    headers = {}
    for n in names:
        values = handler.headers.get_all(n)
        if values is None:
            deny("SignatureDoesNotMatch", "signed header %s is not in the request" % n)
        headers[n] = ",".join(values)
    url = "http://" + handler.headers["Host"] + handler.path
    req = AWSRequest(method=handler.command, url=url, data=body, headers=headers)
    req.context["timestamp"] = amz_date
    signer_class = S3SigV4Auth if service == "s3" else SigV4Auth
    signer = signer_class(Credentials(key, k["secret"], k["token"] or None), service, region)
    canonical = signer.canonical_request(req)
    expected = signer.signature(signer.string_to_sign(req, canonical), req)
    if expected != signature:
        deny("SignatureDoesNotMatch",
             "The request signature we calculated does not match the signature you provided. "
             "The Canonical String for this request should have been\n'%s'" % canonical)
    return service, region, k


def deny(code, message):
    with LOCK:
        STATE["denied"].append(code + ": " + message.split("\n")[0])
    raise ApiError(403, code, message)


def issue(kind, arn):
    key = "ASIA" + secrets.token_hex(8).upper()
    with LOCK:
        lifetime = STATE["lifetime"]
        STATE["issued"][kind] += 1
        STATE["keys"][key] = {"secret": secrets.token_hex(20), "token": secrets.token_hex(32),
                              "expires": now() + lifetime, "arn": arn}
        return key, STATE["keys"][key]


# ---- the services

def sts(op, params, ident):
    if op == "GetCallerIdentity":
        arn = ident["arn"]
        return ("<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>%s</Arn>"
                "<UserId>AIDTEST</UserId><Account>%s</Account></GetCallerIdentityResult>"
                "</GetCallerIdentityResponse>" % (arn, ACCOUNT))
    if op in ("AssumeRole", "AssumeRoleWithWebIdentity"):
        if op == "AssumeRoleWithWebIdentity" and params["WebIdentityToken"] != WEB_TOKEN:
            raise ApiError(400, "InvalidIdentityToken", "the web identity token is not valid")
        role = params["RoleArn"]
        arn = "arn:aws:sts::%s:assumed-role/%s/%s" % (ACCOUNT, role.split("/")[-1],
                                                     params["RoleSessionName"])
        key, k = issue("sts" if op == "AssumeRole" else "web", arn)
        return ("<{op}Response><{op}Result><Credentials><AccessKeyId>{key}</AccessKeyId>"
                "<SecretAccessKey>{secret}</SecretAccessKey><SessionToken>{token}</SessionToken>"
                "<Expiration>{exp}</Expiration></Credentials><AssumedRoleUser><Arn>{arn}</Arn>"
                "</AssumedRoleUser></{op}Result></{op}Response>").format(
                    op=op, key=key, secret=k["secret"], token=k["token"],
                    exp=iso(k["expires"]), arn=arn)
    raise ApiError(400, "InvalidAction", op)


def job_state(job):
    """The simulated lifecycle, advanced to now."""
    t = now() - job["started"]
    env = job["request"].get("Environment", {})
    outcome = env.get("SIM_OUTCOME", "Completed")
    seconds = float(env.get("SIM_SECONDS", "1"))
    if job.get("stop_at") is not None:
        if now() - job["stop_at"] < 0.5:
            return "Stopping", "Stopping", None
        return "Stopped", "Stopped", None
    if t < 0.3:
        return "InProgress", "Starting", None
    if t < 0.3 + seconds:
        return "InProgress", "Training", None
    if outcome == "Failed":
        return "Failed", "Failed", "AlgorithmError: the training script exited with status 3"
    if outcome == "Spot" and env.get("LAUNCH_RESUME_COUNT", "0") == "0":
        return "Stopped", "Interrupted", "Training job interrupted: the spot capacity was reclaimed"
    return "Completed", "Completed", None


def job_log_lines(job):
    status, _, reason = job_state(job)
    env = job["request"].get("Environment", {})
    seconds = float(env.get("SIM_SECONDS", "1"))
    elapsed = min(now() - job["started"] - 0.3, seconds)
    lines = ["starting %s" % job["request"]["AlgorithmSpecification"].get("TrainingImage", "")]
    spec = job["request"]["AlgorithmSpecification"]
    lines.append("argv: %s" % json.dumps(spec.get("ContainerEntrypoint", []) + spec.get("ContainerArguments", [])))
    for k in sorted(env):
        if k.startswith("LAUNCH_") and k != "LAUNCH_CONFIG":
            lines.append("%s=%s" % (k, env[k]))
    for i in range(int(max(0, elapsed))):
        lines.append("step %d" % (i + 1))
    if status in ("Completed", "Failed", "Stopped"):
        lines.append("done: %s" % (reason or status))
    return lines


def sagemaker(op, p, ident):
    jobs = STATE["jobs"]
    if op == "CreateTrainingJob":
        name = p["TrainingJobName"]
        with LOCK:
            if name in jobs:
                raise ApiError(400, "ResourceInUse", "Training job names must be unique within an AWS account and region, and a training job with this name already exists (arn:aws:sagemaker:%s:%s:training-job/%s)" % (REGION, ACCOUNT, name.lower()))
            jobs[name] = {"request": p, "started": now(), "stop_at": None}
            stream = "%s/algo-1-%d" % (name, int(now()))
            jobs[name]["stream"] = stream
        return {"TrainingJobArn": "arn:aws:sagemaker:%s:%s:training-job/%s" % (REGION, ACCOUNT, name.lower())}
    if op in ("DescribeTrainingJob", "StopTrainingJob"):
        with LOCK:
            throttled = op == "DescribeTrainingJob" and STATE["throttle"] > 0
            if throttled:
                STATE["throttle"] -= 1
        if throttled:
            raise ApiError(400, "ThrottlingException", "Rate exceeded")
        name = p["TrainingJobName"]
        job = jobs.get(name)
        if job is None:
            raise ApiError(400, "ValidationException", "Requested resource not found.")
        status, secondary, reason = job_state(job)
        if op == "StopTrainingJob":
            if status != "InProgress":
                raise ApiError(400, "ValidationException", "The training job %s is not in progress (it is %s)" % (name, status))
            job["stop_at"] = now()
            return {}
        r = job["request"]
        out = {"TrainingJobName": name,
               "TrainingJobArn": "arn:aws:sagemaker:%s:%s:training-job/%s" % (REGION, ACCOUNT, name.lower()),
               "ModelArtifacts": {"S3ModelArtifacts": r["OutputDataConfig"]["S3OutputPath"] + "/" + name + "/output/model.tar.gz"},
               "TrainingJobStatus": status, "SecondaryStatus": secondary,
               "AlgorithmSpecification": r["AlgorithmSpecification"],
               "ResourceConfig": r["ResourceConfig"], "StoppingCondition": r["StoppingCondition"],
               "CreationTime": job["started"], "RoleArn": r["RoleArn"],
               "EnableManagedSpotTraining": r.get("EnableManagedSpotTraining", False)}
        if r.get("Environment"):
            out["Environment"] = r["Environment"]
        if reason:
            out["FailureReason"] = reason
        return out
    if op == "ListTrainingJobs":
        contains = p.get("NameContains", "")
        summaries = []
        for name, job in sorted(jobs.items()):
            if contains in name:
                status = job_state(job)[0]
                if p.get("StatusEquals") and status != p["StatusEquals"]:
                    continue
                summaries.append({"TrainingJobName": name,
                                  "TrainingJobArn": "arn:aws:sagemaker:%s:%s:training-job/%s" % (REGION, ACCOUNT, name.lower()),
                                  "CreationTime": job["started"], "TrainingJobStatus": status})
        return {"TrainingJobSummaries": summaries}
    raise ApiError(400, "UnknownOperationException", op)


def logs(op, p, ident):
    group = p.get("logGroupName")
    if group != "/aws/sagemaker/TrainingJobs":
        raise ApiError(400, "ResourceNotFoundException", "The specified log group does not exist.")
    if op == "DescribeLogStreams":
        prefix = p.get("logStreamNamePrefix", "")
        streams = [{"logStreamName": j["stream"], "creationTime": int(j["started"] * 1000)}
                   for j in STATE["jobs"].values() if j["stream"].startswith(prefix)]
        return {"logStreams": streams}
    if op == "GetLogEvents":
        job = next((j for j in STATE["jobs"].values() if j["stream"] == p["logStreamName"]), None)
        if job is None:
            raise ApiError(400, "ResourceNotFoundException", "The specified log stream does not exist.")
        lines = job_log_lines(job)
        start = int(p.get("nextToken", "f/0").split("/")[1]) if p.get("nextToken") else 0
        limit = p.get("limit", 10000)
        chunk = lines[start:start + min(limit, 3)]  # small pages, so paging is exercised
        token = "f/%d" % (start + len(chunk))
        events = [{"timestamp": int(job["started"] * 1000) + i, "message": m,
                   "ingestionTime": int(now() * 1000)} for i, m in enumerate(chunk)]
        return {"events": events, "nextForwardToken": token, "nextBackwardToken": "b/%d" % start}
    raise ApiError(400, "UnknownOperationException", op)


def ecr(op, p, ident):
    if op == "GetAuthorizationToken":
        key, k = issue("sts", ident["arn"])
        token = base64.b64encode(("AWS:" + k["token"]).encode()).decode()
        return {"authorizationData": [{"authorizationToken": token, "expiresAt": k["expires"],
                                       "proxyEndpoint": "https://%s.dkr.ecr.%s.amazonaws.com" % (ACCOUNT, REGION)}]}
    if op == "DescribeImages":
        repo = p["repositoryName"]
        tags = STATE["images"].get(repo)
        if tags is None:
            raise ApiError(400, "RepositoryNotFoundException", "The repository with name '%s' does not exist in the registry with id '%s'" % (repo, ACCOUNT))
        details = []
        for ident_ in p.get("imageIds", [{"imageTag": t} for t in tags]):
            tag = ident_.get("imageTag")
            if tag not in tags:
                raise ApiError(400, "ImageNotFoundException", "The image with imageId {imageTag:'%s'} does not exist within the repository with name '%s' in the registry with id '%s'" % (tag, repo, ACCOUNT))
            details.append({"registryId": ACCOUNT, "repositoryName": repo, "imageDigest": tags[tag], "imageTags": [tag]})
        return {"imageDetails": details}
    raise ApiError(400, "UnknownOperationException", op)


SERVICES = {"sagemaker": sagemaker, "logs": logs, "ecr": ecr}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, ctype="application/x-amz-json-1.1", extra=None):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", secrets.token_hex(8))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def s3(self, op, body):
        """PutObject and DeleteObject, path-style: only the signature matters."""
        try:
            service, _, _ = verify(self, body)
            if service != "s3":
                deny("SignatureDoesNotMatch", "Credential should be scoped to correct service: 's3'.")
            sha = self.headers.get("x-amz-content-sha256")
            if sha is None:
                raise ApiError(400, "InvalidRequest", "Missing required header for this request: x-amz-content-sha256")
            if sha != "UNSIGNED-PAYLOAD" and sha != __import__("hashlib").sha256(body).hexdigest():
                raise ApiError(400, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.")
        except ApiError as e:
            xml = "<Error><Code>%s</Code><Message>%s</Message></Error>" % (e.code, e.message.split("\n")[0])
            return self.reply(e.status, xml, "application/xml")
        with LOCK:
            STATE["calls"].append("s3.%s %s" % (op, urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)))
        self.reply(200 if op == "PutObject" else 204, "", "application/xml")

    def do_DELETE(self):
        self.s3("DeleteObject", self.body())

    def do_PUT(self):
        body = self.body()
        if self.headers.get("Authorization"):
            return self.s3("PutObject", body)
        if self.path == "/latest/api/token":
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
            if not ttl or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return self.reply(400, "", "text/plain")
            token = secrets.token_hex(16)
            with LOCK:
                STATE["imds_tokens"].add(token)
            return self.reply(200, token, "text/plain")
        self.reply(404, "", "text/plain")

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith("/latest/meta-data/iam/security-credentials/"):
            if self.headers.get("X-aws-ec2-metadata-token") not in STATE["imds_tokens"]:
                return self.reply(401, "", "text/plain")  # IMDSv2 only
            role = path[len("/latest/meta-data/iam/security-credentials/"):]
            if role == "":
                return self.reply(200, ROLE_NAME, "text/plain")
            if role != ROLE_NAME:
                return self.reply(404, "", "text/plain")
            key, k = issue("imds", "arn:aws:sts::%s:assumed-role/%s/i-0123" % (ACCOUNT, ROLE_NAME))
            return self.reply(200, json.dumps({"Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": key,
                                               "SecretAccessKey": k["secret"], "Token": k["token"],
                                               "Expiration": iso(k["expires"]),
                                               "LastUpdated": iso(now())}), "text/plain")
        if path == "/container-credentials":
            if self.headers.get("Authorization") != CONTAINER_TOKEN:
                return self.reply(401, json.dumps({"message": "bad authorization token"}), "application/json")
            key, k = issue("container", "arn:aws:sts::%s:assumed-role/%s/task" % (ACCOUNT, ROLE_NAME))
            return self.reply(200, json.dumps({"AccessKeyId": key, "SecretAccessKey": k["secret"],
                                               "Token": k["token"], "Expiration": iso(k["expires"]),
                                               "RoleArn": "arn:aws:iam::%s:role/%s" % (ACCOUNT, ROLE_NAME)}),
                              "application/json")
        if path == "/_test/state":
            with LOCK:
                out = {"issued": STATE["issued"], "denied": STATE["denied"], "invalid": STATE["invalid"],
                       "calls": STATE["calls"], "throttle": STATE["throttle"], "jobs": {n: j["request"] for n, j in STATE["jobs"].items()}}
            return self.reply(200, json.dumps(out), "application/json")
        self.reply(404, "", "text/plain")

    def do_POST(self):
        body = self.body()
        path = urllib.parse.urlsplit(self.path).path
        if path == "/_test/config":
            cfg = json.loads(body)
            with LOCK:
                if "throttle" in cfg:
                    STATE["throttle"] = cfg["throttle"]
                if "lifetime" in cfg:
                    STATE["lifetime"] = cfg["lifetime"]
                for repo, tags in cfg.get("images", {}).items():
                    STATE["images"][repo] = tags
            return self.reply(200, "{}", "application/json")
        try:
            self.api(body)
        except ApiError as e:
            if e.status == 403 or self.headers.get("X-Amz-Target") is None:
                xml = ("<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message>"
                       "</Error></ErrorResponse>" % (e.code, e.message.replace("&", "&amp;").replace("<", "&lt;")))
                if self.headers.get("X-Amz-Target"):
                    return self.reply(e.status, json.dumps({"__type": e.code, "message": e.message}),
                                      extra={"x-amzn-ErrorType": e.code})
                return self.reply(e.status, xml, "text/xml")
            self.reply(e.status, json.dumps({"__type": e.code, "message": e.message}),
                       extra={"x-amzn-ErrorType": e.code})

    def api(self, body):
        target = self.headers.get("X-Amz-Target")
        if target is None:
            # The Query protocol: STS. AssumeRoleWithWebIdentity is unsigned.
            form = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
            op = form.get("Action", "")
            if op not in MODELS["sts"].operation_names:
                raise ApiError(400, "InvalidAction", "Could not find operation %s" % op)
            if form.get("Version") != MODELS["sts"].api_version:
                raise ApiError(400, "InvalidParameterValue", "Version must be %s" % MODELS["sts"].api_version)
            ident = None
            if op != "AssumeRoleWithWebIdentity":
                service, region, ident = verify(self, body)
                if service != "sts":
                    deny("SignatureDoesNotMatch", "Credential should be scoped to correct service: 'sts'.")
            params = query_params("sts", op, form)
            validate("sts", op, params)
            with LOCK:
                STATE["calls"].append("sts." + op)
            return self.reply(200, sts(op, params, ident), "text/xml")
        prefix, _, op = target.partition(".")
        name = TARGETS.get(prefix)
        if name is None or name not in SERVICES or op not in MODELS[name].operation_names:
            raise ApiError(400, "UnknownOperationException", "unknown target %s" % target)
        service, region, ident = verify(self, body)
        if service != MODELS[name].signing_name:
            deny("SignatureDoesNotMatch", "Credential should be scoped to correct service: '%s'." % MODELS[name].signing_name)
        want = "application/x-amz-json-%s" % MODELS[name].metadata["jsonVersion"]
        if self.headers.get("Content-Type", "").split(";")[0] != want:
            raise ApiError(400, "SerializationException", "Content-Type must be %s" % want)
        try:
            params = json.loads(body or b"{}")
        except ValueError as e:
            raise ApiError(400, "SerializationException", str(e))
        validate(name, op, params)
        with LOCK:
            STATE["calls"].append(name + "." + op)
        self.reply(200, json.dumps(SERVICES[name](op, params, ident)))


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def main():
    global WEB_TOKEN, CONTAINER_TOKEN, REGION
    access, secret, WEB_TOKEN, CONTAINER_TOKEN = sys.argv[1:5]
    REGION = "us-east-1"
    STATE["keys"][access] = {"secret": secret, "token": "", "expires": None,
                             "arn": "arn:aws:iam::%s:user/launch-test" % ACCOUNT}
    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
