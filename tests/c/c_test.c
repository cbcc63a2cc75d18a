/* The plain-C test of launch.h: every function, and every error path the
 * header documents, from C99. */
#define _XOPEN_SOURCE 700 /* mkdtemp, setenv, nftw */

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "launch/launch.h"

static int failures = 0;
static int checks = 0;

#define CHECK(cond)                                                       \
  do {                                                                    \
    ++checks;                                                             \
    if (!(cond)) {                                                        \
      ++failures;                                                         \
      fprintf(stderr, "%s:%d: CHECK(%s) failed; last error: %s\n", __FILE__, \
              __LINE__, #cond, launch_last_error());                      \
    }                                                                     \
  } while (0)

/* A call that must fail with `code` and leave a message containing `text`. */
#define CHECK_FAILS(call, code, text)                                     \
  do {                                                                    \
    int rc_ = (call);                                                     \
    ++checks;                                                             \
    if (rc_ != (code) || !strstr(launch_last_error(), (text))) {          \
      ++failures;                                                         \
      fprintf(stderr, "%s:%d: %s returned %d (%s), want %d with \"%s\"\n", \
              __FILE__, __LINE__, #call, rc_, launch_last_error(), (code), (text)); \
    }                                                                     \
  } while (0)

#define CHECK_OK(call) CHECK((call) == LAUNCH_OK)

static int contains(const char *haystack, const char *needle) {
  return haystack && strstr(haystack, needle) != NULL;
}

/* ---- An in-house scheduler: records every job it is handed. */

#define MAX_JOBS 32

struct scheduler {
  char *jobs[MAX_JOBS]; /* the job JSON of each submit */
  int submitted;
  int polls[MAX_JOBS];
  int cancelled[MAX_JOBS];
  int hold;       /* nonzero: runs stay RUNNING */
  int destroyed;  /* destroy calls */
  int reattached; /* reattach calls */
};

static int run_index(const char *run_id) { return atoi(run_id + strlen("sched-")); }

static int sched_submit(void *user, const char *job_json, char *run_id, size_t run_id_size) {
  struct scheduler *s = user;
  if (contains(job_json, "\"name\":\"refused\"")) {
    return launch_error_set(LAUNCH_EUSER, "the scheduler refused the job: no such partition");
  }
  if (s->submitted >= MAX_JOBS) return launch_error_set(LAUNCH_EIO, "scheduler full");
  s->jobs[s->submitted] = malloc(strlen(job_json) + 1);
  strcpy(s->jobs[s->submitted], job_json);
  snprintf(run_id, run_id_size, "sched-%d", s->submitted);
  s->submitted++;
  return LAUNCH_OK;
}

static int sched_poll(void *user, const char *run_id, launch_run_status *status) {
  struct scheduler *s = user;
  int i = run_index(run_id);
  CHECK(status->version == LAUNCH_RUN_STATUS_VERSION);
  CHECK(status->phase == LAUNCH_RUN_RUNNING);
  s->polls[i]++;
  if (s->cancelled[i]) {
    status->phase = LAUNCH_RUN_STOPPED;
    return LAUNCH_OK;
  }
  if (contains(s->jobs[i], "\"name\":\"poll-error\"")) {
    return launch_error_set(LAUNCH_EIO, "the scheduler lost track of the job");
  }
  if (s->hold) return LAUNCH_OK;
  if (contains(s->jobs[i], "\"name\":\"crash\"")) {
    status->phase = LAUNCH_RUN_FAILED;
    status->has_exit_code = 1;
    status->exit_code = 3;
    snprintf(status->message, sizeof status->message, "node lost");
    return LAUNCH_OK;
  }
  status->phase = LAUNCH_RUN_FINISHED;
  status->has_exit_code = 1;
  status->exit_code = 0;
  return LAUNCH_OK;
}

static int sched_cancel(void *user, const char *run_id, int grace_ms) {
  struct scheduler *s = user;
  CHECK(grace_ms >= 0);
  s->cancelled[run_index(run_id)] = 1;
  return LAUNCH_OK;
}

/* Finds the run submitted for the item, by the LAUNCH_ITEM_ID its job's env
 * carried; a job named "lost" is gone from the scheduler. */
static int sched_reattach(void *user, const char *item_json, char *run_id, size_t run_id_size) {
  struct scheduler *s = user;
  const char *at = strstr(item_json, "\"id\":\"");
  char want[128];
  int i;
  s->reattached++;
  CHECK(at != NULL);
  if (!at || contains(item_json, "\"name\":\"lost\"")) {
    return launch_error_set(LAUNCH_ENOTFOUND, "the scheduler has no such job");
  }
  at += strlen("\"id\":\"");
  snprintf(want, sizeof want, "\"LAUNCH_ITEM_ID\":\"%.*s\"", (int)strcspn(at, "\""), at);
  for (i = 0; i < s->submitted; ++i) {
    if (contains(s->jobs[i], want)) {
      snprintf(run_id, run_id_size, "sched-%d", i);
      return LAUNCH_OK;
    }
  }
  return launch_error_set(LAUNCH_ENOTFOUND, "the scheduler has no such job");
}

static void sched_destroy(void *user) {
  struct scheduler *s = user;
  int i;
  for (i = 0; i < s->submitted; ++i) free(s->jobs[i]);
  s->submitted = 0;
  s->destroyed++;
}

static launch_runner scheduler_runner(struct scheduler *s) {
  launch_runner r;
  memset(&r, 0, sizeof r);
  r.version = LAUNCH_RUNNER_VERSION;
  r.user = s;
  r.submit = sched_submit;
  r.poll = sched_poll;
  r.cancel = sched_cancel;
  r.destroy = sched_destroy;
  return r;
}

/* ---- Callbacks for logs and events. */

static int log_lines = 0;
static void count_log(int level, const char *line, void *user) {
  (void)user;
  CHECK(level >= LAUNCH_LOG_ERROR && level <= LAUNCH_LOG_TRACE);
  CHECK(line != NULL);
  log_lines++;
}

struct events {
  int count;
  int finished;
  int failed;
  launch_agent *stop_on_finish; /* stops this agent at the first finish */
};

static void record_event(const char *event_json, void *user) {
  struct events *e = user;
  e->count++;
  CHECK(contains(event_json, "\"item_id\":\""));
  CHECK(contains(event_json, "\"queue\":\"c-test/"));
  CHECK(contains(event_json, "\"run_id\":\""));
  CHECK(contains(event_json, "\"exit_code\":"));
  CHECK(contains(event_json, "\"message\":\""));
  if (contains(event_json, "\"state\":\"finished\"")) {
    e->finished++;
    if (e->stop_on_finish) CHECK_OK(launch_agent_stop(e->stop_on_finish, LAUNCH_STOP_DRAIN));
  }
  if (contains(event_json, "\"state\":\"failed\"")) e->failed++;
}

/* ---- Helpers. */

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static char tmpdir[64];

static char *push(launch_transport *t, const char *queue, const char *job) {
  char *id = NULL;
  CHECK_OK(launch_queue_push(t, queue, job, &id));
  CHECK(id != NULL);
  return id;
}

static int item_has(launch_transport *t, const char *id, const char *text) {
  char *json = NULL;
  int found;
  if (launch_item_get(t, id, &json) != LAUNCH_OK) return 0;
  found = contains(json, text);
  launch_free(json);
  return found;
}

static int count_items(launch_transport *t, const char *queue, const char *state) {
  char *json = NULL;
  const char *p;
  int n = 0;
  if (launch_item_list(t, queue, state, &json) != LAUNCH_OK) return -1;
  for (p = json; (p = strstr(p, "\"id\":")) != NULL; ++p) n++;
  launch_free(json);
  return n;
}

static launch_agent *make_agent(launch_transport *t, const char *queue, int max_jobs) {
  launch_agent_options opts;
  launch_agent *agent = NULL;
  char yaml[256];
  const char *queues[1];
  queues[0] = queue;
  snprintf(yaml, sizeof yaml, "entity: c-test\nlaunch_home: %s/home\ngpus: 0\n", tmpdir);
  CHECK_OK(launch_agent_options_init(&opts, LAUNCH_AGENT_OPTIONS_VERSION));
  opts.config_yaml = yaml;
  opts.use_environment = 0;
  opts.queues = queues;
  opts.queue_count = 1;
  opts.max_jobs = max_jobs;
  CHECK_OK(launch_agent_create(&agent, t, &opts));
  CHECK(agent != NULL);
  return agent;
}

/* Steps `agent` until `queue` has no pending/claimed/running item. */
static void step_until_idle(launch_agent *agent, launch_transport *t, const char *queue) {
  int turns;
  for (turns = 0; turns < 2000; ++turns) {
    if (count_items(t, queue, "pending") == 0 && count_items(t, queue, "claimed") == 0 &&
        count_items(t, queue, "running") == 0 && launch_agent_running_jobs(agent) == 0) {
      return;
    }
    CHECK(launch_agent_step(agent, 10) == 1);
  }
  CHECK(!"the agent never got the queue idle");
}

static void drain(launch_agent *agent) {
  int turns, rc = 1;
  CHECK_OK(launch_agent_stop(agent, LAUNCH_STOP_DRAIN));
  for (turns = 0; turns < 2000 && rc == 1; ++turns) rc = launch_agent_step(agent, 10);
  CHECK(rc == 0);
}

/* Another thread's side of "launch_agent_stop from another thread": waits
 * (on the item's state, read through the shared transport) until the run is
 * running, then stops the agent blocked in launch_agent_run. No CHECKs
 * here: the counters are the main thread's; it reads the results. */
struct stopper {
  launch_transport *t;
  launch_agent *agent;
  const char *item_id;
  int saw_running;
  int stop_rc;
};

static void *stop_when_running(void *arg) {
  struct stopper *st = (struct stopper *)arg;
  int i;
  for (i = 0; i < 3000 && !st->saw_running; ++i) {
    char *json = NULL;
    if (launch_item_get(st->t, st->item_id, &json) == LAUNCH_OK &&
        strstr(json, "\"state\":\"running\"")) {
      st->saw_running = 1;
    }
    launch_free(json);
    if (!st->saw_running) {
      struct timespec ten_ms = {0, 10 * 1000 * 1000};
      nanosleep(&ten_ms, NULL);
    }
  }
  st->stop_rc = launch_agent_stop(st->agent, LAUNCH_STOP_CANCEL);
  return NULL;
}

/* ---- The tests. */

static void test_version_and_errors(void) {
  int code;
  CHECK(strcmp(launch_version(), LAUNCH_VERSION_STRING) == 0);
  CHECK(launch_version_number() == LAUNCH_VERSION_NUMBER);

  CHECK(launch_error_set(LAUNCH_EUSER, "boom") == LAUNCH_EUSER);
  CHECK(strcmp(launch_last_error(), "boom") == 0);
  CHECK(launch_error_set(LAUNCH_OK, NULL) == LAUNCH_OK);
  CHECK(strcmp(launch_last_error(), "") == 0);

  CHECK(strcmp(launch_error_name(LAUNCH_OK), "ok") == 0);
  CHECK(strcmp(launch_error_name(LAUNCH_EINVALID), "invalid") == 0);
  CHECK(strcmp(launch_error_name(LAUNCH_ENOTFOUND), "not_found") == 0);
  CHECK(strcmp(launch_error_name(LAUNCH_EEXISTS), "exists") == 0);
  CHECK(strcmp(launch_error_name(LAUNCH_ESTATE), "state") == 0);
  CHECK(strcmp(launch_error_name(LAUNCH_EIO), "io") == 0);
  CHECK(strcmp(launch_error_name(LAUNCH_EUNSUPPORTED), "unsupported") == 0);
  CHECK(strcmp(launch_error_name(LAUNCH_ETIMEOUT), "timeout") == 0);
  CHECK(strcmp(launch_error_name(LAUNCH_EINTERNAL), "internal") == 0);
  CHECK(strcmp(launch_error_name(LAUNCH_EUSER), "user") == 0);
  for (code = LAUNCH_EUSER; code <= LAUNCH_EINVALID; ++code) {
    CHECK(strcmp(launch_error_name(code), "unknown") != 0);
  }
  CHECK(strcmp(launch_error_name(1), "unknown") == 0);
  CHECK(strcmp(launch_error_name(-10), "unknown") == 0);
  launch_free(NULL);
}

static void test_log(void) {
  CHECK_FAILS(launch_log_set_level(-1), LAUNCH_EINVALID, "level -1");
  CHECK_FAILS(launch_log_set_level(LAUNCH_LOG_TRACE + 1), LAUNCH_EINVALID, "level 5");
  CHECK_OK(launch_log_set_level(LAUNCH_LOG_DEBUG));
  CHECK_OK(launch_log_set_sink(count_log, NULL));
}

static void test_transport(void) {
  launch_transport *t = NULL;
  char path[128];
  FILE *f;
  CHECK_FAILS(launch_transport_open(NULL, "memory://"), LAUNCH_EINVALID, "out is NULL");
  CHECK_FAILS(launch_transport_open(&t, "no-scheme"), LAUNCH_EINVALID, "no-scheme");
  CHECK(t == NULL);
  CHECK_FAILS(launch_transport_open(&t, "nosuch://x"), LAUNCH_ENOTFOUND, "nosuch");
  /* A store under a regular file cannot be created. */
  snprintf(path, sizeof path, "%s/plain-file", tmpdir);
  f = fopen(path, "w");
  CHECK(f != NULL);
  fclose(f);
  snprintf(path, sizeof path, "sqlite://%s/plain-file/launch.db", tmpdir);
  CHECK_FAILS(launch_transport_open(&t, path), LAUNCH_EIO, "plain-file");
  CHECK(t == NULL);

  CHECK_OK(setenv("LAUNCH_QUEUE_URI", "memory://", 1));
  CHECK_OK(launch_transport_open(&t, NULL));
  CHECK(t != NULL);
  launch_transport_close(t);
  t = NULL;
  CHECK_OK(launch_transport_open(&t, ""));
  launch_transport_close(t);
  launch_transport_close(NULL);
}

static const char *queue_yaml =
    "name: jobs\n"
    "entity: c-test\n"
    "resource: inhouse\n"
    "config: {partition: gpu, nodes: \"{{nodes}}\"}\n"
    "template_variables:\n"
    "  nodes: {type: integer, minimum: 1, maximum: 4, default: 1}\n";

static void test_queues_and_items(launch_transport *t) {
  char *json = NULL, *id = NULL, *id2 = NULL;

  CHECK_FAILS(launch_queue_create(NULL, queue_yaml, NULL), LAUNCH_EINVALID, "transport is NULL");
  CHECK_FAILS(launch_queue_create(t, NULL, NULL), LAUNCH_EINVALID, "text is NULL");
  CHECK_FAILS(launch_queue_create(t, "name: q\nentity: c-test\ncolour: blue\n", &json),
              LAUNCH_EINVALID, "colour");
  CHECK(json == NULL);
  CHECK_OK(launch_queue_create(t, queue_yaml, &json));
  CHECK(contains(json, "\"name\":\"jobs\""));
  launch_free(json);
  CHECK_FAILS(launch_queue_create(t, queue_yaml, NULL), LAUNCH_EEXISTS, "jobs");
  CHECK_OK(launch_queue_create(t, "{\"name\": \"other\", \"entity\": \"c-test\"}", NULL));

  CHECK_FAILS(launch_queue_get(NULL, "c-test/jobs", &json), LAUNCH_EINVALID, "transport");
  CHECK_FAILS(launch_queue_get(t, NULL, &json), LAUNCH_EINVALID, "queue is NULL");
  CHECK_FAILS(launch_queue_get(t, "c-test/jobs", NULL), LAUNCH_EINVALID, "queue_json_out");
  CHECK_FAILS(launch_queue_get(t, "c-test/nope", &json), LAUNCH_ENOTFOUND, "nope");
  CHECK_FAILS(launch_queue_get(t, "c-test/bad name!", &json), LAUNCH_EINVALID, "bad name!");
  CHECK_OK(launch_queue_get(t, "c-test/jobs", &json));
  CHECK(contains(json, "\"resource\":\"inhouse\""));
  launch_free(json);

  CHECK_FAILS(launch_queue_list(NULL, &json), LAUNCH_EINVALID, "transport");
  CHECK_FAILS(launch_queue_list(t, NULL), LAUNCH_EINVALID, "queues_json_out");
  CHECK_OK(launch_queue_list(t, &json));
  CHECK(json[0] == '[' && contains(json, "\"jobs\"") && contains(json, "\"other\""));
  launch_free(json);

  CHECK_FAILS(launch_queue_delete(NULL, "c-test/other"), LAUNCH_EINVALID, "transport");
  CHECK_FAILS(launch_queue_delete(t, NULL), LAUNCH_EINVALID, "queue is NULL");
  CHECK_FAILS(launch_queue_delete(t, "c-test/nope"), LAUNCH_ENOTFOUND, "nope");
  CHECK_OK(launch_queue_delete(t, "c-test/other"));
  CHECK_FAILS(launch_queue_get(t, "c-test/other", &json), LAUNCH_ENOTFOUND, "other");

  /* push */
  CHECK_FAILS(launch_queue_push(NULL, "c-test/jobs", "{}", &id), LAUNCH_EINVALID, "transport");
  CHECK_FAILS(launch_queue_push(t, NULL, "{}", &id), LAUNCH_EINVALID, "queue is NULL");
  CHECK_FAILS(launch_queue_push(t, "c-test/jobs", NULL, &id), LAUNCH_EINVALID, "job_json");
  CHECK_FAILS(launch_queue_push(t, "c-test/jobs", "{not json", &id), LAUNCH_EINVALID, "JSON");
  CHECK(id == NULL);
  CHECK_FAILS(launch_queue_push(t, "c-test/jobs", "{\"template_values\": {\"nodes\": \"9\"}}", &id),
              LAUNCH_EINVALID, "nodes");
  CHECK_FAILS(launch_queue_push(t, "c-test/nope", "{}", &id), LAUNCH_ENOTFOUND, "nope");
  CHECK(count_items(t, "c-test/jobs", NULL) == 0);
  CHECK_OK(launch_queue_push(t, "c-test/jobs", "{\"name\": \"first\"}", NULL));
  id = push(t, "c-test/jobs", "{\"name\": \"second\", \"template_values\": {\"nodes\": \"2\"}}");

  /* get, list, cancel */
  CHECK_FAILS(launch_item_get(NULL, id, &json), LAUNCH_EINVALID, "transport");
  CHECK_FAILS(launch_item_get(t, NULL, &json), LAUNCH_EINVALID, "item_id is NULL");
  CHECK_FAILS(launch_item_get(t, id, NULL), LAUNCH_EINVALID, "item_json_out");
  CHECK_FAILS(launch_item_get(t, "no-such-item", &json), LAUNCH_ENOTFOUND, "no-such-item");
  CHECK(item_has(t, id, "\"state\":\"pending\""));
  CHECK(item_has(t, id, "\"name\":\"second\""));

  CHECK_FAILS(launch_item_list(NULL, NULL, NULL, &json), LAUNCH_EINVALID, "transport");
  CHECK_FAILS(launch_item_list(t, NULL, NULL, NULL), LAUNCH_EINVALID, "items_json_out");
  CHECK_FAILS(launch_item_list(t, "bad name!", NULL, &json), LAUNCH_EINVALID, "bad name!");
  CHECK_FAILS(launch_item_list(t, NULL, "sleeping", &json), LAUNCH_EINVALID, "sleeping");
  CHECK(count_items(t, NULL, NULL) == 2);
  CHECK(count_items(t, "c-test/jobs", "pending") == 2);
  CHECK(count_items(t, "c-test/jobs", "finished") == 0);

  CHECK_FAILS(launch_item_cancel(NULL, id, NULL), LAUNCH_EINVALID, "transport");
  CHECK_FAILS(launch_item_cancel(t, NULL, NULL), LAUNCH_EINVALID, "item_id is NULL");
  CHECK_FAILS(launch_item_cancel(t, "no-such-item", NULL), LAUNCH_ENOTFOUND, "no-such-item");
  CHECK_OK(launch_item_cancel(t, id, &json));
  CHECK(contains(json, "\"state\":\"stopped\""));
  launch_free(json);
  CHECK_FAILS(launch_item_cancel(t, id, &json), LAUNCH_ESTATE, id);
  CHECK(json == NULL);
  id2 = push(t, "c-test/jobs", "{\"name\": \"third\"}");
  CHECK_OK(launch_item_cancel(t, id2, NULL));
  CHECK(count_items(t, "c-test/jobs", "stopped") == 2);
  launch_free(id);
  launch_free(id2);
}

static void test_agent_options(launch_transport *t) {
  launch_agent_options opts;
  launch_agent *agent = NULL;
  const char *queues[1] = {NULL};
  char path[128];
  FILE *f;

  CHECK_FAILS(launch_agent_options_init(NULL, 1), LAUNCH_EINVALID, "opts is NULL");
  CHECK_FAILS(launch_agent_options_init(&opts, 0), LAUNCH_EINVALID, "version 0");
  CHECK_FAILS(launch_agent_options_init(&opts, LAUNCH_AGENT_OPTIONS_VERSION + 1), LAUNCH_EINVALID,
              "version 2");
  CHECK_OK(launch_agent_options_init(&opts, LAUNCH_AGENT_OPTIONS_VERSION));
  CHECK(opts.version == LAUNCH_AGENT_OPTIONS_VERSION);
  CHECK(opts.use_environment == 1);
  CHECK(opts.config_yaml == NULL && opts.config_path == NULL && opts.entity == NULL);
  CHECK(opts.queues == NULL && opts.queue_count == 0 && opts.max_jobs == 0);

  CHECK_FAILS(launch_agent_create(NULL, t, &opts), LAUNCH_EINVALID, "out is NULL");
  opts.version = 99;
  CHECK_FAILS(launch_agent_create(&agent, t, &opts), LAUNCH_EINVALID, "version 99");
  CHECK(agent == NULL);
  opts.version = LAUNCH_AGENT_OPTIONS_VERSION;
  opts.config_yaml = "entity: c-test\n";
  opts.config_path = "/nonexistent/launch-config.yaml";
  CHECK_FAILS(launch_agent_create(&agent, t, &opts), LAUNCH_EINVALID, "not both");
  opts.config_yaml = NULL;
  CHECK_FAILS(launch_agent_create(&agent, t, &opts), LAUNCH_EIO, "/nonexistent/launch-config.yaml");
  opts.config_path = NULL;
  opts.config_yaml = "entity: c-test\nqueues: [jobs]\nwibble: 3\n";
  CHECK_FAILS(launch_agent_create(&agent, t, &opts), LAUNCH_EINVALID, "wibble");
  opts.config_yaml = "entity: c-test\n";
  opts.queue_count = 1;
  CHECK_FAILS(launch_agent_create(&agent, t, &opts), LAUNCH_EINVALID, "queues is NULL");
  opts.queues = queues;
  CHECK_FAILS(launch_agent_create(&agent, t, &opts), LAUNCH_EINVALID, "queues[0] is NULL");
  CHECK(agent == NULL);

  /* From a file, the overrides winning; on the default transport. */
  snprintf(path, sizeof path, "%s/launch-config.yaml", tmpdir);
  f = fopen(path, "w");
  CHECK(f != NULL);
  fprintf(f, "entity: someone\nqueues: [elsewhere]\nmax_jobs: 2\nqueue_uri: memory://\n"
             "launch_home: %s/home\ngpus: 0\n", tmpdir);
  fclose(f);
  queues[0] = "c-test/jobs";
  opts.config_yaml = NULL;
  opts.config_path = path;
  opts.entity = "c-test";
  opts.max_jobs = -1;
  CHECK_OK(launch_agent_create(&agent, NULL, &opts));
  CHECK(agent != NULL);
  launch_agent_destroy(agent);
  agent = NULL;
  /* Default options read the environment. */
  CHECK_OK(setenv("LAUNCH_ENTITY", "c-test", 1));
  CHECK_OK(launch_agent_create(&agent, t, NULL));
  launch_agent_destroy(agent);
  launch_agent_destroy(NULL);
  remove(path);
}

static void test_runner_registration(void) {
  struct scheduler s;
  launch_runner r;
  memset(&s, 0, sizeof s);
  r = scheduler_runner(&s);

  CHECK_FAILS(launch_runner_register(NULL, &r), LAUNCH_EINVALID, "name is NULL");
  CHECK_FAILS(launch_runner_register("x", NULL), LAUNCH_EINVALID, "runner is NULL");
  CHECK_FAILS(launch_runner_register("", &r), LAUNCH_EINVALID, "name is empty");
  r.version = 0;
  CHECK_FAILS(launch_runner_register("x", &r), LAUNCH_EINVALID, "version 0");
  r.version = LAUNCH_RUNNER_VERSION + 1;
  CHECK_FAILS(launch_runner_register("x", &r), LAUNCH_EINVALID, "version 3");
  r = scheduler_runner(&s);
  r.submit = NULL;
  CHECK_FAILS(launch_runner_register("x", &r), LAUNCH_EINVALID, "submit");
  r = scheduler_runner(&s);
  r.poll = NULL;
  CHECK_FAILS(launch_runner_register("x", &r), LAUNCH_EINVALID, "poll");
  r = scheduler_runner(&s);
  r.cancel = NULL;
  CHECK_FAILS(launch_runner_register("x", &r), LAUNCH_EINVALID, "cancel");
  CHECK(s.destroyed == 0);

  CHECK_FAILS(launch_runner_unregister(NULL), LAUNCH_EINVALID, "name is NULL");
  CHECK_FAILS(launch_runner_unregister("x"), LAUNCH_ENOTFOUND, "x");

  /* Replacing a registration releases the old one; so does unregistering. */
  r = scheduler_runner(&s);
  CHECK_OK(launch_runner_register("x", &r));
  CHECK_OK(launch_runner_register("x", &r));
  CHECK(s.destroyed == 1);
  CHECK_OK(launch_runner_unregister("x"));
  CHECK(s.destroyed == 2);
  CHECK_FAILS(launch_runner_unregister("x"), LAUNCH_ENOTFOUND, "x");
  r.destroy = NULL;
  CHECK_OK(launch_runner_register("x", &r));
  CHECK_OK(launch_runner_unregister("x"));
  CHECK(s.destroyed == 2);
}

static void test_agent_with_runner(launch_transport *t) {
  struct scheduler s;
  struct events ev;
  launch_runner r;
  launch_agent *agent;
  char *ok_id, *crash_id, *refused_id, *poll_error_id, *held_id, *json = NULL;
  char *agent_id = NULL;
  int i;

  memset(&s, 0, sizeof s);
  memset(&ev, 0, sizeof ev);
  r = scheduler_runner(&s);
  CHECK_OK(launch_runner_register("inhouse", &r));
  log_lines = 0;

  agent = make_agent(t, "c-test/jobs", 4);
  CHECK_FAILS(launch_agent_on_event(NULL, record_event, &ev), LAUNCH_EINVALID, "agent is NULL");
  CHECK_OK(launch_agent_on_event(agent, record_event, &ev));
  CHECK_FAILS(launch_agent_id(NULL, &json), LAUNCH_EINVALID, "agent is NULL");
  CHECK_FAILS(launch_agent_id(agent, NULL), LAUNCH_EINVALID, "id_out");
  CHECK_OK(launch_agent_id(agent, &agent_id));
  CHECK(agent_id != NULL && agent_id[0] != '\0');
  CHECK_FAILS(launch_agent_running_jobs(NULL), LAUNCH_EINVALID, "agent is NULL");
  CHECK(launch_agent_running_jobs(agent) == 0);
  CHECK_FAILS(launch_agent_step(NULL, 0), LAUNCH_EINVALID, "agent is NULL");
  CHECK_FAILS(launch_agent_step(agent, -1), LAUNCH_EINVALID, "timeout_ms -1");
  CHECK_FAILS(launch_agent_stop(NULL, LAUNCH_STOP_DRAIN), LAUNCH_EINVALID, "agent is NULL");
  CHECK_FAILS(launch_agent_stop(agent, 7), LAUNCH_EINVALID, "mode");
  CHECK_FAILS(launch_agent_run(NULL), LAUNCH_EINVALID, "agent is NULL");

  ok_id = push(t, "c-test/jobs",
               "{\"name\": \"ok\", \"entry_point\": [\"train\", \"--fast\"], "
               "\"template_values\": {\"nodes\": \"2\"}}");
  crash_id = push(t, "c-test/jobs", "{\"name\": \"crash\"}");
  refused_id = push(t, "c-test/jobs", "{\"name\": \"refused\"}");
  poll_error_id = push(t, "c-test/jobs", "{\"name\": \"poll-error\"}");
  step_until_idle(agent, t, "c-test/jobs");

  CHECK(item_has(t, ok_id, "\"state\":\"finished\""));
  CHECK(item_has(t, crash_id, "\"state\":\"failed\""));
  CHECK(item_has(t, crash_id, "node lost"));
  CHECK(item_has(t, refused_id, "\"state\":\"failed\""));
  CHECK(item_has(t, refused_id, "no such partition"));
  CHECK(item_has(t, poll_error_id, "\"state\":\"failed\""));
  CHECK(item_has(t, poll_error_id, "lost track of the job"));
  /* "first", left pending by test_queues_and_items, ran too. */
  CHECK(s.submitted == 4);
  /* What the scheduler was handed: the resolved job. */
  for (i = 0; i < s.submitted && !contains(s.jobs[i], "\"name\":\"ok\""); ++i) {
  }
  CHECK(i < s.submitted);
  if (i < s.submitted) {
    CHECK(contains(s.jobs[i], "\"argv\":[\"train\",\"--fast\"]"));
    CHECK(contains(s.jobs[i], "\"nodes\":2"));
    CHECK(contains(s.jobs[i], "\"partition\":\"gpu\""));
    CHECK(contains(s.jobs[i], "\"LAUNCH_ITEM_ID\":\""));
  }
  CHECK(ev.finished == 2);
  CHECK(ev.failed == 3);

  /* The agent registered itself: its record, every field. */
  CHECK_FAILS(launch_agent_list(NULL, &json), LAUNCH_EINVALID, "transport");
  CHECK_FAILS(launch_agent_list(t, NULL), LAUNCH_EINVALID, "agents_json_out");
  CHECK_OK(launch_agent_list(t, &json));
  CHECK(json != NULL && json[0] == '[');
  if (json && agent_id) {
    char expected[256];
    snprintf(expected, sizeof expected, "{\"id\":\"%s\",\"host\":\"", agent_id);
    CHECK(contains(json, expected));
    CHECK(contains(json, "\"queues\":[\"c-test/jobs\"]"));
    CHECK(contains(json, "\"max_jobs\":4"));
    CHECK(contains(json, "\"status\":\""));
    CHECK(contains(json, "\"last_seen\":"));
  }
  launch_free(json);
  json = NULL;
  launch_free(agent_id);
  CHECK(log_lines > 0);

  /* A held run keeps its queue from being deleted. */
  s.hold = 1;
  held_id = push(t, "c-test/jobs", "{\"name\": \"held\"}");
  for (i = 0; i < 500 && !item_has(t, held_id, "\"state\":\"running\""); ++i) {
    CHECK(launch_agent_step(agent, 10) == 1);
  }
  CHECK(item_has(t, held_id, "\"state\":\"running\""));
  CHECK(launch_agent_running_jobs(agent) == 1);
  CHECK_FAILS(launch_queue_delete(t, "c-test/jobs"), LAUNCH_ESTATE, "c-test/jobs");

  /* Stopping with cancel cancels the run and puts its item back. */
  CHECK_OK(launch_agent_stop(agent, LAUNCH_STOP_CANCEL));
  for (i = 0; i < 2000 && launch_agent_step(agent, 10) == 1; ++i) {
  }
  CHECK(launch_agent_step(agent, 0) == 0);
  CHECK(s.cancelled[s.submitted - 1] == 1);
  CHECK(item_has(t, held_id, "\"state\":\"pending\""));
  CHECK_OK(launch_agent_on_event(agent, NULL, NULL));
  launch_agent_destroy(agent);

  /* run() blocks until an event callback stops the agent. */
  s.hold = 0;
  memset(&ev, 0, sizeof ev);
  agent = make_agent(t, "c-test/jobs", 1);
  ev.stop_on_finish = agent;
  CHECK_OK(launch_agent_on_event(agent, record_event, &ev));
  CHECK_OK(launch_agent_run(agent));
  CHECK(ev.finished == 1);
  CHECK(item_has(t, held_id, "\"state\":\"finished\""));
  launch_agent_destroy(agent);

  /* A fresh agent drains. */
  agent = make_agent(t, "c-test/jobs", 1);
  drain(agent);
  launch_agent_destroy(agent);

  /* launch_agent_stop from another thread wakes an agent blocked in
   * launch_agent_run: its held run is cancelled and its item put back. */
  {
    struct stopper st;
    pthread_t thread;
    char *stop_id;
    int submitted_before = s.submitted;
    s.hold = 1;
    stop_id = push(t, "c-test/jobs", "{\"name\": \"stopped from a thread\"}");
    agent = make_agent(t, "c-test/jobs", 1);
    memset(&st, 0, sizeof st);
    st.t = t;
    st.agent = agent;
    st.item_id = stop_id;
    CHECK(pthread_create(&thread, NULL, stop_when_running, &st) == 0);
    CHECK_OK(launch_agent_run(agent));
    CHECK(pthread_join(thread, NULL) == 0);
    CHECK(st.saw_running == 1);
    CHECK(st.stop_rc == LAUNCH_OK);
    CHECK(s.submitted == submitted_before + 1);
    CHECK(s.cancelled[s.submitted - 1] == 1);
    CHECK(item_has(t, stop_id, "\"state\":\"pending\""));
    launch_agent_destroy(agent);
    /* Let a draining agent finish it, so the queue is idle again. */
    s.hold = 0;
    agent = make_agent(t, "c-test/jobs", 1);
    step_until_idle(agent, t, "c-test/jobs");
    drain(agent);
    launch_agent_destroy(agent);
    CHECK(item_has(t, stop_id, "\"state\":\"finished\""));
    launch_free(stop_id);
  }

  CHECK(s.destroyed == 0);
  CHECK_OK(launch_runner_unregister("inhouse"));
  CHECK(s.destroyed == 1);

  launch_free(ok_id);
  launch_free(crash_id);
  launch_free(refused_id);
  launch_free(poll_error_id);
  launch_free(held_id);
}

/* Agent `first` holds two running items and goes away as if killed; a new
 * agent (same home, so the same id) asks the runner for their runs. */
static void restart_agent(launch_transport *t, const char *queue, struct scheduler *s,
                          char **kept_id, char **lost_id) {
  launch_agent *first, *second;
  int i;
  s->hold = 1;
  *kept_id = push(t, queue, "{\"name\": \"kept\"}");
  *lost_id = push(t, queue, "{\"name\": \"lost\"}");
  first = make_agent(t, queue, 2);
  for (i = 0; i < 500 && count_items(t, queue, "running") < 2; ++i) {
    CHECK(launch_agent_step(first, 10) == 1);
  }
  CHECK(count_items(t, queue, "running") == 2);
  launch_agent_destroy(first); /* no drain, no cancel: the runs go on */
  s->hold = 0;
  second = make_agent(t, queue, 2);
  step_until_idle(second, t, queue);
  launch_agent_destroy(second);
}

static void test_reattach(launch_transport *t) {
  struct scheduler s;
  launch_runner r;
  char *kept_id, *lost_id;

  CHECK_OK(launch_queue_create(t, "name: resume\nentity: c-test\nresource: resumable\n", NULL));

  /* Version 2: the kept run is followed to its end, the lost one fails. */
  memset(&s, 0, sizeof s);
  r = scheduler_runner(&s);
  r.reattach = sched_reattach;
  CHECK_OK(launch_runner_register("resumable", &r));
  restart_agent(t, "c-test/resume", &s, &kept_id, &lost_id);
  CHECK(s.reattached == 2);
  CHECK(s.submitted == 2); /* nothing ran twice */
  CHECK(item_has(t, kept_id, "\"state\":\"finished\""));
  CHECK(item_has(t, lost_id, "\"state\":\"failed\""));
  CHECK(item_has(t, lost_id, "agent restarted; run lost"));
  launch_free(kept_id);
  launch_free(lost_id);
  CHECK_OK(launch_runner_unregister("resumable"));

  /* A version 1 struct ends before reattach: that slot is never read,
   * whatever it holds, and both runs are lost as before version 2. */
  memset(&s, 0, sizeof s);
  r = scheduler_runner(&s);
  r.version = 1;
  r.reattach = sched_reattach; /* past the end of a version 1 struct */
  CHECK_OK(launch_runner_register("resumable", &r));
  restart_agent(t, "c-test/resume", &s, &kept_id, &lost_id);
  CHECK(s.reattached == 0);
  CHECK(item_has(t, kept_id, "agent restarted; run lost"));
  CHECK(item_has(t, lost_id, "agent restarted; run lost"));
  launch_free(kept_id);
  launch_free(lost_id);
  CHECK_OK(launch_runner_unregister("resumable"));
}

/* A runner that reports success without naming the run. */
static int silent_submit(void *user, const char *job_json, char *run_id, size_t run_id_size) {
  (void)user;
  (void)job_json;
  (void)run_id;
  (void)run_id_size;
  return LAUNCH_OK;
}

static void test_runner_without_run_id(launch_transport *t) {
  struct scheduler s;
  launch_runner r;
  launch_agent *agent;
  char *id;
  memset(&s, 0, sizeof s);
  r = scheduler_runner(&s);
  r.submit = silent_submit;
  CHECK_OK(launch_runner_register("silent", &r));
  CHECK_OK(launch_queue_create(t, "name: silent\nentity: c-test\nresource: silent\n", NULL));
  id = push(t, "c-test/silent", "{\"name\": \"nameless\"}");
  agent = make_agent(t, "c-test/silent", 1);
  step_until_idle(agent, t, "c-test/silent");
  launch_agent_destroy(agent);
  CHECK(item_has(t, id, "\"state\":\"failed\""));
  CHECK(item_has(t, id, "runner \\\"silent\\\": submit succeeded but wrote no run id"));
  launch_free(id);
  CHECK_OK(launch_runner_unregister("silent"));
}

int main(void) {
  launch_transport *t = NULL;
  char home[128];
  const char *base = getenv("TMPDIR");
  if (snprintf(tmpdir, sizeof tmpdir, "%s/launch-c-test.XXXXXX", base && *base ? base : "/tmp") >=
      (int)sizeof tmpdir) {
    fprintf(stderr, "TMPDIR is too long for this test (%d characters at most)\n",
            (int)sizeof tmpdir - 22);
    return 1;
  }
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  snprintf(home, sizeof home, "%s/home", tmpdir);
  setenv("LAUNCH_HOME", home, 1);

  test_version_and_errors();
  test_log();
  test_transport();
  CHECK_OK(launch_transport_open(&t, "memory://"));
  test_queues_and_items(t);
  test_agent_options(t);
  test_runner_registration();
  test_agent_with_runner(t);
  test_reattach(t);
  test_runner_without_run_id(t);
  launch_transport_close(t);
  CHECK_OK(launch_log_set_sink(NULL, NULL));
  CHECK_OK(launch_log_set_level(LAUNCH_LOG_INFO));

  /* Everything the agents wrote lives under the temporary directory. */
  CHECK(nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0);
  if (failures) {
    fprintf(stderr, "%d of %d checks failed\n", failures, checks);
    return 1;
  }
  printf("all %d checks passed\n", checks);
  return 0;
}
