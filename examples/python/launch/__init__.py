"""launch from Python: queues, jobs and agents over the C ABI (liblaunch_c).

Pure ctypes, standard library only. The shared library is found, in order:

1. the path in the environment variable ``LAUNCH_C_LIBRARY``;
2. for a module installed by ``cmake --install``, the library installed
   with it (its path is in ``launch/_installed.py``);
3. ``liblaunch_c.so.0`` on the dynamic loader's path (``LD_LIBRARY_PATH``,
   the ld.so cache of an installed copy);
4. ``ctypes.util.find_library("launch_c")``.

Example::

    import launch

    with launch.Transport("sqlite:///tmp/launch.db") as t:
        q = t.create_queue({"name": "jobs", "entity": "me", "resource": "local-process"})
        item_id = q.push(name="hello", entry_point=["echo", "hi"])

Errors are :class:`LaunchError` subclasses carrying the library's message.
"""

import ctypes
import ctypes.util
import json
import os
import sys
import threading

__all__ = [
    "LaunchError", "InvalidError", "NotFoundError", "ExistsError", "StateError",
    "LaunchIOError", "UnsupportedError", "LaunchTimeoutError", "InternalError",
    "UserError",
    "Transport", "Queue", "Agent", "Runner", "RunStatus",
    "register_runner", "unregister_runner", "set_log_sink", "set_log_level",
    "version", "version_number",
    "LOG_ERROR", "LOG_WARN", "LOG_INFO", "LOG_DEBUG", "LOG_TRACE",
]

# ---------------------------------------------------------------- errors


class LaunchError(Exception):
    """A failure reported by launch; ``code`` is the LAUNCH_E* status."""

    code = -8

    def __init__(self, message, code=None):
        super().__init__(message)
        if code is not None:
            self.code = code


class InvalidError(LaunchError, ValueError):
    code = -1


class NotFoundError(LaunchError, LookupError):
    code = -2


class ExistsError(LaunchError):
    code = -3


class StateError(LaunchError):
    code = -4


class LaunchIOError(LaunchError):
    code = -5


class UnsupportedError(LaunchError):
    code = -6


class LaunchTimeoutError(LaunchError):
    code = -7


class InternalError(LaunchError):
    code = -8


class UserError(LaunchError):
    code = -9


_ERRORS = {cls.code: cls for cls in (
    InvalidError, NotFoundError, ExistsError, StateError, LaunchIOError,
    UnsupportedError, LaunchTimeoutError, InternalError, UserError)}

LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG, LOG_TRACE = range(5)
_STOP_DRAIN, _STOP_CANCEL = 0, 1
_RUNNER_VERSION = 2
_AGENT_OPTIONS_VERSION = 1

# ---------------------------------------------------------------- the library

_c = ctypes
_LOG_FN = _c.CFUNCTYPE(None, _c.c_int, _c.c_char_p, _c.c_void_p)
_EVENT_FN = _c.CFUNCTYPE(None, _c.c_char_p, _c.c_void_p)
_SUBMIT_FN = _c.CFUNCTYPE(_c.c_int, _c.c_void_p, _c.c_char_p, _c.c_void_p, _c.c_size_t)


class _RunStatusStruct(_c.Structure):
    _fields_ = [
        ("version", _c.c_uint),
        ("phase", _c.c_int),
        ("has_exit_code", _c.c_int),
        ("exit_code", _c.c_int),
        ("message", _c.c_char * 1024),
    ]


_POLL_FN = _c.CFUNCTYPE(_c.c_int, _c.c_void_p, _c.c_char_p, _c.POINTER(_RunStatusStruct))
_CANCEL_FN = _c.CFUNCTYPE(_c.c_int, _c.c_void_p, _c.c_char_p, _c.c_int)
_DESTROY_FN = _c.CFUNCTYPE(None, _c.c_void_p)
_REATTACH_FN = _c.CFUNCTYPE(_c.c_int, _c.c_void_p, _c.c_char_p, _c.c_void_p, _c.c_size_t)


class _RunnerStruct(_c.Structure):
    _fields_ = [
        ("version", _c.c_uint),
        ("user", _c.c_void_p),
        ("needs_image", _c.c_int),
        ("submit", _SUBMIT_FN),
        ("poll", _POLL_FN),
        ("cancel", _CANCEL_FN),
        ("destroy", _DESTROY_FN),
        ("reattach", _REATTACH_FN),
    ]


class _AgentOptions(_c.Structure):
    _fields_ = [
        ("version", _c.c_uint),
        ("config_yaml", _c.c_char_p),
        ("config_path", _c.c_char_p),
        ("use_environment", _c.c_int),
        ("entity", _c.c_char_p),
        ("queues", _c.POINTER(_c.c_char_p)),
        ("queue_count", _c.c_size_t),
        ("max_jobs", _c.c_int),
    ]


_P = _c.c_void_p
_S = _c.c_char_p
_OUT = _c.POINTER(_c.c_void_p)  # char ** out: read as an address, then launch_free

_SIGNATURES = {
    "launch_last_error": (_S, []),
    "launch_error_set": (_c.c_int, [_c.c_int, _S]),
    "launch_error_name": (_S, [_c.c_int]),
    "launch_free": (None, [_P]),
    "launch_version": (_S, []),
    "launch_version_number": (_c.c_int, []),
    "launch_log_set_sink": (_c.c_int, [_LOG_FN, _P]),
    "launch_log_set_level": (_c.c_int, [_c.c_int]),
    "launch_transport_open": (_c.c_int, [_c.POINTER(_P), _S]),
    "launch_transport_close": (None, [_P]),
    "launch_queue_create": (_c.c_int, [_P, _S, _OUT]),
    "launch_queue_get": (_c.c_int, [_P, _S, _OUT]),
    "launch_queue_list": (_c.c_int, [_P, _OUT]),
    "launch_queue_delete": (_c.c_int, [_P, _S]),
    "launch_queue_push": (_c.c_int, [_P, _S, _S, _OUT]),
    "launch_item_get": (_c.c_int, [_P, _S, _OUT]),
    "launch_item_list": (_c.c_int, [_P, _S, _S, _OUT]),
    "launch_item_cancel": (_c.c_int, [_P, _S, _OUT]),
    "launch_agent_list": (_c.c_int, [_P, _OUT]),
    "launch_agent_options_init": (_c.c_int, [_c.POINTER(_AgentOptions), _c.c_uint]),
    "launch_agent_create": (_c.c_int, [_c.POINTER(_P), _P, _c.POINTER(_AgentOptions)]),
    "launch_agent_destroy": (None, [_P]),
    "launch_agent_run": (_c.c_int, [_P]),
    "launch_agent_step": (_c.c_int, [_P, _c.c_int]),
    "launch_agent_stop": (_c.c_int, [_P, _c.c_int]),
    "launch_agent_id": (_c.c_int, [_P, _OUT]),
    "launch_agent_running_jobs": (_c.c_int, [_P]),
    "launch_agent_on_event": (_c.c_int, [_P, _EVENT_FN, _P]),
    "launch_runner_register": (_c.c_int, [_S, _c.POINTER(_RunnerStruct)]),
    "launch_runner_unregister": (_c.c_int, [_S]),
}

_lib_handle = None
_lib_lock = threading.Lock()


def _candidates():
    path = os.environ.get("LAUNCH_C_LIBRARY")
    if path:
        return [path]
    names = []
    try:
        from . import _installed  # written by cmake --install, absent in the source tree
        names.append(_installed.LIBRARY)
    except ImportError:
        pass
    names += ["liblaunch_c.0.dylib"] if sys.platform == "darwin" else ["liblaunch_c.so.0"]
    found = ctypes.util.find_library("launch_c")
    if found:
        names.append(found)
    return names


def _lib():
    """The loaded library, with every signature declared (loaded once)."""
    global _lib_handle
    if _lib_handle is not None:
        return _lib_handle
    with _lib_lock:
        if _lib_handle is None:
            errors = []
            for name in _candidates():
                try:
                    lib = ctypes.CDLL(name)
                    break
                except OSError as e:
                    errors.append(f"{name}: {e}")
            else:
                raise ImportError("launch: cannot load the C library (set LAUNCH_C_LIBRARY "
                                  "to the path of liblaunch_c.so): " + "; ".join(errors))
            for fn, (restype, argtypes) in _SIGNATURES.items():
                f = getattr(lib, fn)
                f.restype = restype
                f.argtypes = argtypes
            _lib_handle = lib
    return _lib_handle


def _enc(text):
    return None if text is None else str(text).encode("utf-8")


def _error(rc):
    message = _lib().launch_last_error().decode("utf-8", "replace")
    return _ERRORS.get(rc, LaunchError)(message, rc)


def _check(rc):
    if rc < 0:
        raise _error(rc)
    return rc


def _call_out(fn, *args):
    """Calls fn(*args, &out) and returns the out string (freed), or None."""
    out = _c.c_void_p()
    _check(fn(*args, _c.byref(out)))
    if not out.value:
        return None
    try:
        return _c.string_at(out.value).decode("utf-8")
    finally:
        _lib().launch_free(out)


def _text(value):
    """A JSON/YAML argument: text as is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def version():
    """The version of the loaded library, e.g. "0.1.0"."""
    return _lib().launch_version().decode()


def version_number():
    return _lib().launch_version_number()


# ---------------------------------------------------------------- logging

_log_sink = None  # keeps the ctypes callback alive


def set_log_sink(sink):
    """Sends the library's log lines to ``sink(level, line)``; None restores stderr.
    The sink is called from whatever thread logs; its exceptions are dropped."""
    global _log_sink
    if sink is None:
        _check(_lib().launch_log_set_sink(_LOG_FN(), None))
        _log_sink = None
        return

    def trampoline(level, line, _user):
        try:
            sink(level, line.decode("utf-8", "replace"))
        except Exception:  # a log line has nowhere else to go
            pass

    callback = _LOG_FN(trampoline)
    _check(_lib().launch_log_set_sink(callback, None))
    _log_sink = callback


def set_log_level(level):
    """Drops lines above ``level`` (LOG_ERROR .. LOG_TRACE; default LOG_INFO)."""
    _check(_lib().launch_log_set_level(level))


# ---------------------------------------------------------------- transports


class _Handle:
    """An opaque C handle owned by this object: closed by close(), by the
    end of a ``with`` block, or when the object is collected."""

    _free = None  # the name of the C function that releases the handle
    _what = "handle"

    def close(self):
        if self._handle:
            getattr(_lib(), self._free)(self._handle)
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_handle", None) and _lib_handle is not None:
            self.close()

    @property
    def _h(self):
        if not self._handle:
            raise StateError("the %s is closed" % self._what)
        return self._handle


class Transport(_Handle):
    """Where queues live: ``memory://``, ``sqlite:///path/launch.db``,
    ``postgres://...``; None for the default ($LAUNCH_QUEUE_URI, else
    sqlite://$LAUNCH_HOME/launch.db). Safe to share between threads."""

    _free = "launch_transport_close"
    _what = "transport"

    def __init__(self, uri=None):
        handle = _c.c_void_p()
        _check(_lib().launch_transport_open(_c.byref(handle), _enc(uri)))
        self._handle = handle
        self.uri = uri


    # queues
    def create_queue(self, definition):
        """Creates a queue from a queue file's text (YAML or JSON) or a dict."""
        data = _call_out(_lib().launch_queue_create, self._h, _enc(_text(definition)))
        return Queue(self, json.loads(data))

    def queue(self, name):
        """The queue "ENTITY/NAME" (NotFoundError when there is none)."""
        return Queue(self, json.loads(_call_out(_lib().launch_queue_get, self._h, _enc(name))))

    def queues(self):
        return [Queue(self, q) for q in json.loads(_call_out(_lib().launch_queue_list, self._h))]

    def delete_queue(self, name):
        _check(_lib().launch_queue_delete(self._h, _enc(name)))

    # items
    def push(self, queue, job=None, **fields):
        """Pushes a job spec (a dict or JSON text, plus keyword fields) onto
        the queue "ENTITY/NAME"; returns the new item's id."""
        spec = dict(json.loads(job) if isinstance(job, str) else (job or {}))
        spec.update(fields)
        return _call_out(_lib().launch_queue_push, self._h, _enc(queue), _enc(json.dumps(spec)))

    def item(self, item_id):
        return json.loads(_call_out(_lib().launch_item_get, self._h, _enc(item_id)))

    def items(self, queue=None, state=None):
        """Items, oldest first, of a queue (None: all) in a state (None: any)."""
        return json.loads(_call_out(_lib().launch_item_list, self._h, _enc(queue), _enc(state)))

    def cancel(self, item_id):
        return json.loads(_call_out(_lib().launch_item_cancel, self._h, _enc(item_id)))

    def agents(self):
        """The registered agents, each a dict: id, host, pid, version, entity,
        queues, status (polling, running or stopped as reported; lost when
        its last heartbeat is over 30 s old, dead when it ran on this host and
        its pid is gone), max_jobs, running_jobs, started_at, last_seen (ms
        since the epoch)."""
        return json.loads(_call_out(_lib().launch_agent_list, self._h))


class Queue:
    """A queue as stored: ``data`` holds its JSON form."""

    def __init__(self, transport, data):
        self.transport = transport
        self.data = data

    @property
    def entity(self):
        return self.data["entity"]

    @property
    def name(self):
        return self.data["name"]

    @property
    def ref(self):
        return f"{self.entity}/{self.name}"

    @property
    def resource(self):
        return self.data.get("resource")

    def push(self, job=None, **fields):
        return self.transport.push(self.ref, job, **fields)

    def items(self, state=None):
        return self.transport.items(self.ref, state)

    def delete(self):
        self.transport.delete_queue(self.ref)

    def __repr__(self):
        return f"Queue({self.ref!r}, resource={self.resource!r})"


# ---------------------------------------------------------------- agents


class Agent(_Handle):
    """An agent polling queues and running their jobs.

    ``config`` is launch-config.yaml as text or a dict; ``config_path`` a file
    (not both). ``queues``, ``max_jobs`` and ``entity`` override it. Drive it
    with run() (blocks until stopped), or step() from a loop of your own.
    """

    _free = "launch_agent_destroy"
    _what = "agent"

    def __init__(self, transport=None, config=None, config_path=None, queues=None,
                 max_jobs=None, entity=None, use_environment=True):
        lib = _lib()
        opts = _AgentOptions()
        _check(lib.launch_agent_options_init(_c.byref(opts), _AGENT_OPTIONS_VERSION))
        if config is not None:
            opts.config_yaml = _enc(_text(config))
        opts.config_path = _enc(config_path)
        opts.use_environment = 1 if use_environment else 0
        opts.entity = _enc(entity)
        if queues:
            encoded = [_enc(q) for q in queues]
            array = (_c.c_char_p * len(encoded))(*encoded)
            opts.queues = _c.cast(array, _c.POINTER(_c.c_char_p))
            opts.queue_count = len(encoded)
        if max_jobs is not None:
            if max_jobs == 0:
                raise InvalidError("max_jobs must be -1 (unlimited) or at least 1, got 0")
            opts.max_jobs = max_jobs
        handle = _c.c_void_p()
        t = transport._h if transport is not None else None
        _check(lib.launch_agent_create(_c.byref(handle), t, _c.byref(opts)))
        self._handle = handle
        self._event_callback = None
        self._event_error = None


    @property
    def id(self):
        return _call_out(_lib().launch_agent_id, self._h)

    @property
    def running_jobs(self):
        return _check(_lib().launch_agent_running_jobs(self._h))

    def on_event(self, callback):
        """Calls ``callback(event)`` for every job transition the agent reports;
        event is a dict: item_id, queue, state, run_id, exit_code, message. An
        exception it raises comes out of the next step() or run()."""
        if callback is None:
            _check(_lib().launch_agent_on_event(self._h, _EVENT_FN(), None))
            self._event_callback = None
            return

        def trampoline(event_json, _user):
            try:
                callback(json.loads(event_json))
            except BaseException as e:  # re-raised from step()
                if self._event_error is None:
                    self._event_error = e

        c_callback = _EVENT_FN(trampoline)
        _check(_lib().launch_agent_on_event(self._h, c_callback, None))
        self._event_callback = c_callback

    def step(self, timeout=0.1):
        """One turn, waiting at most ``timeout`` seconds. False once the agent
        has stopped and has no run left."""
        rc = _check(_lib().launch_agent_step(self._h, int(timeout * 1000)))
        if self._event_error is not None:
            e, self._event_error = self._event_error, None
            raise e
        return rc == 1

    def run(self):
        """Loops until the agent has stopped (stop(), from a callback or
        another thread). Ctrl-C cancels the running jobs, puts their items
        back, then raises KeyboardInterrupt."""
        try:
            while self.step(0.25):
                pass
        except KeyboardInterrupt:
            self.stop(cancel=True)
            while self.step(0.25):
                pass
            raise

    def stop(self, cancel=False):
        """Stops claiming; running jobs finish (or, with cancel, are cancelled
        and their items put back). Safe from another thread."""
        _check(_lib().launch_agent_stop(self._h, _STOP_CANCEL if cancel else _STOP_DRAIN))


# ---------------------------------------------------------------- runners


class RunStatus:
    """What a run is doing, as Runner.poll reports it."""

    RUNNING, FINISHED, FAILED, STOPPED, PREEMPTED = (
        "running", "finished", "failed", "stopped", "preempted")
    _PHASES = {RUNNING: 0, FINISHED: 1, FAILED: 2, STOPPED: 3, PREEMPTED: 4}

    def __init__(self, phase, exit_code=None, message=""):
        if phase not in self._PHASES:
            raise InvalidError(f"run phase {phase!r}: expected one of "
                               + ", ".join(self._PHASES))
        self.phase = phase
        self.exit_code = exit_code
        self.message = message

    def __repr__(self):
        return f"RunStatus({self.phase!r}, exit_code={self.exit_code!r})"


class Runner:
    """Base class of runners written in Python. Register an instance under
    a resource name with register_runner(); queues whose resource is that
    name hand it their jobs (called on the agent's thread):

    - submit(job) gets the resolved job (a dict: item, queue, config, image,
      argv, env, log_dir, agent_id, gpus) and returns the run's id (a str);
    - poll(run_id) returns a RunStatus (or just a phase string);
    - cancel(run_id, grace) asks the run to stop within grace seconds;
    - reattach(item) is asked, when an agent restarts, for the run it started
      for `item` (a dict; its "id" and "run_id" are those the job carried):
      return the run's id, or None when the run is gone (the item then fails
      "agent restarted; run lost", which is also what the default does);
    - close() is called when launch no longer uses the runner.

    An exception in submit fails the job's item with its text; in poll, it
    reports the run failed with its text. The agent keeps running.
    """

    needs_image = False

    def submit(self, job):
        raise NotImplementedError

    def poll(self, run_id):
        raise NotImplementedError

    def cancel(self, run_id, grace):
        pass

    def reattach(self, item):
        return None

    def close(self):
        pass


_runners = {}  # token -> Runner, while launch holds it
_runner_tokens = iter(range(1, sys.maxsize))
_runners_lock = threading.Lock()


def _fail(e):
    """Hands a Python exception to launch as the callback's error."""
    code = e.code if isinstance(e, LaunchError) else -9
    _lib().launch_error_set(code, _enc(f"{type(e).__name__}: {e}"))
    return code


def _write_run_id(what, rid, run_id, size):
    """Copies the run id a runner's `what` returned into launch's buffer."""
    if not isinstance(rid, str) or not rid:
        raise TypeError(f"{what} must return the run id as a non-empty str, got {rid!r}")
    data = rid.encode("utf-8")
    if len(data) + 1 > size:
        raise ValueError(f"run id {rid!r} is longer than {size - 1} bytes")
    _c.memmove(run_id, data + b"\0", len(data) + 1)


def _submit(user, job_json, run_id, size):
    try:
        _write_run_id("submit", _runners[user].submit(json.loads(job_json)), run_id, size)
        return 0
    except BaseException as e:
        return _fail(e)


def _reattach(user, item_json, run_id, size):
    try:
        rid = _runners[user].reattach(json.loads(item_json))
        if rid is None:
            return NotFoundError.code
        _write_run_id("reattach", rid, run_id, size)
        return 0
    except BaseException as e:
        return _fail(e)


def _poll(user, run_id, status):
    try:
        st = _runners[user].poll(run_id.decode("utf-8"))
        if isinstance(st, str):
            st = RunStatus(st)
        if not isinstance(st, RunStatus):
            raise TypeError(f"poll must return a RunStatus or a phase, got {st!r}")
        s = status.contents
        s.phase = RunStatus._PHASES[st.phase]
        if st.exit_code is not None:
            s.has_exit_code = 1
            s.exit_code = int(st.exit_code)
        s.message = (st.message or "").encode("utf-8")[:1023]
        return 0
    except BaseException as e:
        return _fail(e)


def _cancel(user, run_id, grace_ms):
    try:
        _runners[user].cancel(run_id.decode("utf-8"), grace_ms / 1000.0)
        return 0
    except BaseException as e:
        return _fail(e)


def _destroy(user):
    with _runners_lock:
        runner = _runners.pop(user, None)
    if runner is not None:
        try:
            runner.close()
        except Exception:
            pass


# One set of trampolines for every runner; `user` says which runner.
_SUBMIT = _SUBMIT_FN(_submit)
_POLL = _POLL_FN(_poll)
_CANCEL = _CANCEL_FN(_cancel)
_DESTROY = _DESTROY_FN(_destroy)
_REATTACH = _REATTACH_FN(_reattach)


def register_runner(name, runner):
    """Registers (or replaces) ``runner``, a Runner, for resource ``name``."""
    if not isinstance(runner, Runner):
        raise InvalidError(f"runner {name!r}: expected a launch.Runner, got {runner!r}")
    with _runners_lock:
        token = next(_runner_tokens)
        _runners[token] = runner
    vt = _RunnerStruct(version=_RUNNER_VERSION, user=token,
                       needs_image=1 if runner.needs_image else 0,
                       submit=_SUBMIT, poll=_POLL, cancel=_CANCEL, destroy=_DESTROY,
                       reattach=_REATTACH)
    rc = _lib().launch_runner_register(_enc(name), _c.byref(vt))
    if rc < 0:
        with _runners_lock:
            _runners.pop(token, None)
        raise _error(rc)


def unregister_runner(name):
    """Removes the runner of ``name``; agents using it keep it until closed."""
    _check(_lib().launch_runner_unregister(_enc(name)))
