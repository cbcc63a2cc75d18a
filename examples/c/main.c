/* Embeds a launch agent in a C program. Its runner is an "in-house
 * scheduler": it records every job it is handed and reports each one done
 * at the next poll.
 *
 *   launch_example_c [QUEUE_URI]     (default memory://)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "launch/launch.h"

struct scheduler {
  int handed;
};

static int sched_submit(void *user, const char *job_json, char *run_id, size_t size) {
  struct scheduler *s = user;
  printf("scheduler was handed: %.160s...\n", job_json);
  snprintf(run_id, size, "cluster-%d", ++s->handed);
  return LAUNCH_OK;
}

static int sched_poll(void *user, const char *run_id, launch_run_status *status) {
  (void)user;
  (void)run_id;
  status->phase = LAUNCH_RUN_FINISHED;
  status->has_exit_code = 1;
  status->exit_code = 0;
  return LAUNCH_OK;
}

static int sched_cancel(void *user, const char *run_id, int grace_ms) {
  (void)user;
  (void)grace_ms;
  printf("cancel %s\n", run_id);
  return LAUNCH_OK;
}

static void on_event(const char *event_json, void *user) {
  (void)user;
  printf("event: %s\n", event_json);
}

static int fail(const char *what) {
  fprintf(stderr, "%s: %s\n", what, launch_last_error());
  return 1;
}

int main(int argc, char **argv) {
  struct scheduler sched = {0};
  launch_runner runner;
  launch_transport *t = NULL;
  launch_agent *agent = NULL;
  launch_agent_options opts;
  const char *queues[] = {"research/training"};
  char *finished = NULL;
  const char *p;
  int i, done = 0, status = 0;

  memset(&runner, 0, sizeof runner);
  runner.version = LAUNCH_RUNNER_VERSION;
  runner.user = &sched;
  runner.submit = sched_submit;
  runner.poll = sched_poll;
  runner.cancel = sched_cancel;
  if (launch_runner_register("in-house", &runner) != LAUNCH_OK) return fail("register");

  if (launch_transport_open(&t, argc > 1 ? argv[1] : "memory://") != LAUNCH_OK) {
    return fail("open");
  }
  if (launch_queue_create(t, "{name: training, entity: research, resource: in-house}", NULL) !=
      LAUNCH_OK) {
    return fail("queue create");
  }
  for (i = 0; i < 3; ++i) {
    char job[128];
    snprintf(job, sizeof job, "{\"name\": \"train-%d\", \"entry_point\": [\"train\"]}", i);
    if (launch_queue_push(t, "research/training", job, NULL) != LAUNCH_OK) return fail("push");
  }

  launch_agent_options_init(&opts, LAUNCH_AGENT_OPTIONS_VERSION);
  opts.config_yaml = "entity: research\ngpus: 0\n";
  opts.queues = queues;
  opts.queue_count = 1;
  opts.max_jobs = 2;
  if (launch_agent_create(&agent, t, &opts) != LAUNCH_OK) return fail("agent");
  launch_agent_on_event(agent, on_event, NULL);

  /* A host's own loop: step until the queue is done, then drain. */
  for (i = 0; i < 1000 && sched.handed < 3; ++i) launch_agent_step(agent, 50);
  launch_agent_stop(agent, LAUNCH_STOP_DRAIN);
  while (launch_agent_step(agent, 50) == 1) {
  }

  if (launch_item_list(t, "research/training", "finished", &finished) != LAUNCH_OK) {
    return fail("list");
  }
  for (p = finished; (p = strstr(p, "\"state\":\"finished\"")) != NULL; ++p) done++;
  printf("%d of 3 jobs finished\n", done);
  if (done != 3) status = 1;
  launch_free(finished);
  launch_agent_destroy(agent);
  launch_transport_close(t);
  launch_runner_unregister("in-house");
  return status;
}
