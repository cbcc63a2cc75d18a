/* launch — the C ABI: queues, jobs and agents from C, Python (ctypes) or
 * anything else that can call C.
 *
 * Conventions (the same for every function below):
 *
 *  - Status: a function returns LAUNCH_OK (0) or a negative LAUNCH_E* code.
 *    The message of the last failure is per thread: launch_last_error().
 *  - Arguments: a NULL where a value is required is LAUNCH_EINVALID. Input
 *    strings are UTF-8, NUL-terminated and copied: the caller may free them
 *    as soon as the call returns.
 *  - Ownership: a string returned through a `char **` out-parameter is the
 *    caller's, freed with launch_free(). On failure the out-parameter is set
 *    to NULL. An out-parameter documented as optional may be NULL.
 *  - Handles: opaque, created by launch_<object>_create/open and released by
 *    the matching destroy/close, which accepts NULL.
 *  - JSON: jobs, items and queues cross this header as JSON text, with the
 *    field names of docs/architecture.md (snake_case).
 *  - Queue names are "ENTITY/NAME".
 *
 * Thread safety: a transport may be used from several threads at once; an
 * agent is driven from one thread (launch_agent_stop excepted). The log sink
 * and the runner registry are process-wide and safe to change at any time.
 */
#ifndef LAUNCH_LAUNCH_H
#define LAUNCH_LAUNCH_H

#include <stddef.h>

#include "launch/export.h"
#include "launch/version.hpp" /* LAUNCH_VERSION_* macros; plain C when included from C */

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Status codes: LAUNCH_OK, or one of launch::Errc, one to one. */
enum {
  LAUNCH_OK = 0,
  LAUNCH_EINVALID = -1,     /* bad input: a field, a value, a file */
  LAUNCH_ENOTFOUND = -2,    /* no such queue, item, runner, scheme */
  LAUNCH_EEXISTS = -3,      /* already exists */
  LAUNCH_ESTATE = -4,       /* an illegal state transition */
  LAUNCH_EIO = -5,          /* the store, a process, a file */
  LAUNCH_EUNSUPPORTED = -6, /* not supported by this transport/runner */
  LAUNCH_ETIMEOUT = -7,     /* a deadline passed */
  LAUNCH_EINTERNAL = -8,    /* a bug in launch */
  LAUNCH_EUSER = -9         /* a user callback failed */
};

/* The message of the calling thread's last failure: "" when there was none.
 * Never NULL; valid until the next failing call on this thread. */
LAUNCH_EXPORT const char *launch_last_error(void);

/* Records `message` as the calling thread's last error and returns `code`.
 * For callbacks (custom runners): `return launch_error_set(LAUNCH_EUSER,
 * "scheduler refused the job");` hands the message back to launch. A NULL
 * message clears the error. */
LAUNCH_EXPORT int launch_error_set(int code, const char *message);

/* "ok", "invalid", "not_found", ... for a status code; "unknown" for any
 * other value. Static storage. */
LAUNCH_EXPORT const char *launch_error_name(int code);

/* Frees what launch returned through a `char **`. NULL is a no-op. */
LAUNCH_EXPORT void launch_free(void *ptr);

/* ---- Version: of the library actually loaded, to compare with the
 * LAUNCH_VERSION_STRING / LAUNCH_VERSION_NUMBER macros of this header. */
LAUNCH_EXPORT const char *launch_version(void);
LAUNCH_EXPORT int launch_version_number(void);

/* ---- Logging: everything the library says goes through one sink. */
enum {
  LAUNCH_LOG_ERROR = 0,
  LAUNCH_LOG_WARN = 1,
  LAUNCH_LOG_INFO = 2,
  LAUNCH_LOG_DEBUG = 3,
  LAUNCH_LOG_TRACE = 4
};
/* Called from whatever thread logs, with a line that has no newline. */
typedef void (*launch_log_fn)(int level, const char *line, void *user);
/* Replaces the sink; NULL restores the default (stderr). */
LAUNCH_EXPORT int launch_log_set_sink(launch_log_fn sink, void *user);
/* Lines above `level` are dropped. LAUNCH_EINVALID outside ERROR..TRACE. */
LAUNCH_EXPORT int launch_log_set_level(int level);

/* ---- Transports: where queues live. */
typedef struct launch_transport launch_transport;

/* Opens "memory://", "sqlite:///path/launch.db", "postgres://..." or a
 * registered scheme; NULL or "" opens the default ($LAUNCH_QUEUE_URI, else
 * sqlite://$LAUNCH_HOME/launch.db). LAUNCH_EINVALID for a malformed URI,
 * LAUNCH_ENOTFOUND for an unknown scheme, LAUNCH_EIO when the store fails. */
LAUNCH_EXPORT int launch_transport_open(launch_transport **out, const char *uri);
LAUNCH_EXPORT void launch_transport_close(launch_transport *transport);

/* ---- Queues. */

/* Creates a queue from a queue file's text, YAML or JSON (it must name its
 * entity). `queue_json_out` (optional) receives the stored queue.
 * LAUNCH_EINVALID naming the bad field, LAUNCH_EEXISTS when it exists. */
LAUNCH_EXPORT int launch_queue_create(launch_transport *transport, const char *text,
                                      char **queue_json_out);
/* LAUNCH_ENOTFOUND when there is no such queue. */
LAUNCH_EXPORT int launch_queue_get(launch_transport *transport, const char *queue,
                                   char **queue_json_out);
/* A JSON array of every queue. */
LAUNCH_EXPORT int launch_queue_list(launch_transport *transport, char **queues_json_out);
/* Deletes the queue and its items. LAUNCH_ENOTFOUND; LAUNCH_ESTATE while an
 * item of it is claimed, running or stopping. */
LAUNCH_EXPORT int launch_queue_delete(launch_transport *transport, const char *queue);

/* Pushes a job spec (JSON) onto a queue; `item_id_out` (optional) receives
 * the new item's id. LAUNCH_EINVALID for a bad spec or a template value that
 * breaks its schema (the message names the variable), LAUNCH_ENOTFOUND for
 * an unknown queue. A refused push changes nothing. */
LAUNCH_EXPORT int launch_queue_push(launch_transport *transport, const char *queue,
                                    const char *job_json, char **item_id_out);

/* ---- Items: pushed jobs. */

/* LAUNCH_ENOTFOUND for an unknown id. */
LAUNCH_EXPORT int launch_item_get(launch_transport *transport, const char *item_id,
                                  char **item_json_out);
/* A JSON array of items, oldest first, of `queue` (NULL: every queue) in
 * `state` (NULL: any; "pending", "running", ...). LAUNCH_EINVALID for a bad
 * queue name or state. */
LAUNCH_EXPORT int launch_item_list(launch_transport *transport, const char *queue,
                                   const char *state, char **items_json_out);
/* pending -> stopped at once; claimed/running -> stopping. `item_json_out`
 * (optional) receives the item after. LAUNCH_ENOTFOUND; LAUNCH_ESTATE when
 * the item has already ended. */
LAUNCH_EXPORT int launch_item_cancel(launch_transport *transport, const char *item_id,
                                     char **item_json_out);

/* A JSON array of the agents registered on the transport, each an object
 * {"id", "host", "pid", "version", "entity", "queues", "status" ("polling",
 * "running" or "stopped" as the agent reported it; "lost" when its last
 * heartbeat is more than 30 s old, "dead" when it runs on this host and its
 * pid is gone), "max_jobs", "running_jobs", "started_at", "last_seen"}
 * (times in ms since the epoch). */
LAUNCH_EXPORT int launch_agent_list(launch_transport *transport, char **agents_json_out);

/* ---- Agents. */
typedef struct launch_agent launch_agent;

#define LAUNCH_AGENT_OPTIONS_VERSION 1
typedef struct launch_agent_options {
  unsigned int version; /* LAUNCH_AGENT_OPTIONS_VERSION */
  /* launch-config.yaml: its text, or a path to it; at most one (NULL: an
   * empty config). */
  const char *config_yaml;
  const char *config_path;
  /* Apply LAUNCH_ENTITY and LAUNCH_MAX_JOBS from the environment, between
   * the file and the overrides below. Default 1. */
  int use_environment;
  /* Overrides, applied last. NULL / 0 keep the config's value. */
  const char *entity;
  const char *const *queues; /* "NAME" or "ENTITY/NAME" */
  size_t queue_count;
  int max_jobs; /* -1: unlimited */
} launch_agent_options;

/* Fills `opts` with the defaults of `version`. LAUNCH_EINVALID for a
 * version this library does not know. */
LAUNCH_EXPORT int launch_agent_options_init(launch_agent_options *opts,
                                            unsigned int version);

/* Creates an agent on `transport` (NULL: the config's queue_uri, else the
 * default). The agent shares the transport: closing the handle afterwards
 * is fine. `opts` NULL means the defaults. LAUNCH_EINVALID for an unknown
 * options version, both config_yaml and config_path, or a bad config (the
 * message names the key); LAUNCH_EIO for an unreadable config file. */
LAUNCH_EXPORT int launch_agent_create(launch_agent **out, launch_transport *transport,
                                      const launch_agent_options *opts);
/* Must not be called while run/step is running on another thread. */
LAUNCH_EXPORT void launch_agent_destroy(launch_agent *agent);

/* Registers the agent and loops until it has stopped and has no run left. */
LAUNCH_EXPORT int launch_agent_run(launch_agent *agent);
/* One turn, waiting at most `timeout_ms` for something to happen. Returns
 * 1 while the agent goes on, 0 once it has stopped with no run left, or a
 * negative code. LAUNCH_EINVALID for a negative timeout. */
LAUNCH_EXPORT int launch_agent_step(launch_agent *agent, int timeout_ms);

enum {
  LAUNCH_STOP_DRAIN = 0, /* stop claiming; let running jobs finish */
  LAUNCH_STOP_CANCEL = 1 /* stop claiming; cancel running jobs, put them back */
};
/* May be called from another thread or a signal handler; a second drain, or
 * a cancel, escalates. LAUNCH_EINVALID for an unknown mode. */
LAUNCH_EXPORT int launch_agent_stop(launch_agent *agent, int mode);

/* The agent's id, as it registers itself. */
LAUNCH_EXPORT int launch_agent_id(const launch_agent *agent, char **id_out);
/* How many jobs it runs now (>= 0), or a negative code. */
LAUNCH_EXPORT int launch_agent_running_jobs(const launch_agent *agent);

/* Called on the agent's thread for every transition it reports, with an
 * object {"item_id", "queue", "state", "run_id", "exit_code" (or null),
 * "message"}. NULL removes the callback. */
typedef void (*launch_event_fn)(const char *event_json, void *user);
LAUNCH_EXPORT int launch_agent_on_event(launch_agent *agent, launch_event_fn callback,
                                        void *user);

/* ---- Custom runners: a host scheduler that receives resolved jobs and
 * reports their state, through the same path as the built-in runners. */

/* What a run is doing. */
enum {
  LAUNCH_RUN_RUNNING = 0,
  LAUNCH_RUN_FINISHED = 1,
  LAUNCH_RUN_FAILED = 2,
  LAUNCH_RUN_STOPPED = 3,
  LAUNCH_RUN_PREEMPTED = 4 /* the target evicted it: the item goes back to pending */
};

#define LAUNCH_RUN_ID_MAX 256
#define LAUNCH_RUN_MESSAGE_MAX 1024

#define LAUNCH_RUN_STATUS_VERSION 1
/* Filled by a runner's poll. launch sets `version` and zeroes the rest
 * (phase RUNNING, no exit code, empty message) before each call. */
typedef struct launch_run_status {
  unsigned int version;
  int phase;         /* LAUNCH_RUN_* */
  int has_exit_code; /* nonzero: exit_code is meaningful */
  int exit_code;
  char message[LAUNCH_RUN_MESSAGE_MAX]; /* why it failed/stopped; NUL-terminated */
} launch_run_status;

#define LAUNCH_RUNNER_VERSION 2
/* Each callback gets `user` first and returns LAUNCH_OK or a negative code,
 * after launch_error_set() to say why. A failed submit fails the item with
 * that message; a failed poll reports the run failed with it. Callbacks run
 * on the agent's thread. Fields marked "since version N" are read only when
 * `version` >= N, so a struct built against an older launch.h stays valid. */
typedef struct launch_runner {
  unsigned int version; /* LAUNCH_RUNNER_VERSION */
  void *user;
  /* Nonzero: jobs need a container image; the agent's builder makes one
   * first and it arrives as the job's "image". */
  int needs_image;
  /* Starts the resolved job (JSON: item, queue, config, image, argv, env,
   * log_dir, agent_id, gpus) and writes the target's id for the run, at most
   * `run_id_size` bytes with the NUL, into `run_id`. Required. */
  int (*submit)(void *user, const char *job_json, char *run_id, size_t run_id_size);
  /* Non-blocking: fills `status` for the run. Required. */
  int (*poll)(void *user, const char *run_id, launch_run_status *status);
  /* Asks the run to stop within `grace_ms`; poll then reports STOPPED.
   * Required. */
  int (*cancel)(void *user, const char *run_id, int grace_ms);
  /* Called once, when no agent uses the runner any more and it has been
   * replaced or unregistered. Optional. */
  void (*destroy)(void *user);
  /* Since version 2. When an agent starts and finds items that an earlier
   * run of it held (it was killed or restarted), finds the run started for
   * one: `item_json` is the item, with the "id" and "run_id" that the job
   * handed to submit carried (as "item" and as LAUNCH_ITEM_ID/LAUNCH_RUN_ID
   * in its env). Writes the run's id into `run_id` and returns LAUNCH_OK; the agent then
   * polls it as its own. LAUNCH_ENOTFOUND when the run is gone: the item
   * fails at stage agent, "agent restarted; run lost". Optional: NULL is
   * the same as ENOTFOUND. */
  int (*reattach)(void *user, const char *item_json, char *run_id, size_t run_id_size);
} launch_runner;

/* Registers (or replaces) the runner for resource `name`: a queue whose
 * resource is `name` hands its jobs to it. The struct is copied. On failure
 * destroy is not called and `user` stays the caller's. LAUNCH_EINVALID for
 * an unknown version (1 and 2 are known), an empty name or a missing
 * required callback. */
LAUNCH_EXPORT int launch_runner_register(const char *name, const launch_runner *runner);
/* Removes the runner of `name`; agents that already use it keep it until
 * they are destroyed. LAUNCH_ENOTFOUND when none was registered here. */
LAUNCH_EXPORT int launch_runner_unregister(const char *name);

#ifdef __cplusplus
}
#endif

#endif
