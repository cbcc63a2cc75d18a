/* Uses the installed C ABI as a C program does: opens an in-process
 * transport, creates a queue, pushes a job with a template value, reads the
 * item back and sees a refused push name its field. Exits non-zero, with
 * the reason on stderr, if anything is off. Built twice by the install
 * test: through CMake's launch::launch_c, and with nothing but the flags of
 * `pkg-config --cflags --libs launch`. */
#include <stdio.h>
#include <string.h>

#include <launch/launch.h>

static int fail(const char *what) {
  fprintf(stderr, "launch_consumer_c: %s: %s\n", what, launch_last_error());
  return 1;
}

int main(void) {
  launch_transport *t = NULL;
  char *id = NULL, *item = NULL;
  int rc = 1;
  if (launch_version_number() <= 0) return fail("launch_version_number");
  if (launch_transport_open(&t, "memory://") != LAUNCH_OK) return fail("launch_transport_open");
  if (launch_queue_create(t,
                          "name: gpu\nentity: ml-team\nresource: local-process\n"
                          "config: {env: {GPUS: \"{{gpus}}\"}}\n"
                          "template_variables:\n  gpus: {type: integer, minimum: 1, maximum: 4}\n",
                          NULL) != LAUNCH_OK) {
    rc = fail("launch_queue_create");
    goto out;
  }
  if (launch_queue_push(t, "ml-team/gpu",
                        "{\"entry_point\": [\"/bin/true\"], \"template_values\": {\"gpus\": \"2\"}}",
                        &id) != LAUNCH_OK) {
    rc = fail("launch_queue_push");
    goto out;
  }
  if (launch_item_get(t, id, &item) != LAUNCH_OK) {
    rc = fail("launch_item_get");
    goto out;
  }
  if (!strstr(item, "\"state\":\"pending\"")) {
    fprintf(stderr, "launch_consumer_c: the item read back is not pending: %s\n", item);
    goto out;
  }
  if (launch_queue_push(t, "ml-team/gpu",
                        "{\"entry_point\": [\"/bin/true\"], \"template_values\": {\"gpus\": \"9\"}}",
                        NULL) != LAUNCH_EINVALID ||
      !strstr(launch_last_error(), "gpus")) {
    fprintf(stderr, "launch_consumer_c: a push of gpus 9 was not refused naming gpus: %s\n",
            launch_last_error());
    goto out;
  }
  printf("C consumer: launch %s, item %s pending\n", launch_version(), id);
  rc = 0;
out:
  launch_free(id);
  launch_free(item);
  launch_transport_close(t);
  return rc;
}
