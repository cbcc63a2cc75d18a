#!/usr/bin/env python3
"""Creates a queue, pushes jobs, and runs an agent whose runner is Python
code: an "in-house scheduler" that records what it is handed.

    LAUNCH_C_LIBRARY=build/liblaunch_c.so PYTHONPATH=examples/python \
        python3 examples/python/example.py [QUEUE_URI]
"""

import sys
import tempfile
import textwrap

import launch


class InHouseScheduler(launch.Runner):
    """Hands each job to "the cluster" and reports it done at the next poll."""

    def __init__(self):
        self.handed = []

    def submit(self, job):
        self.handed.append(job)
        return f"cluster-{len(self.handed)}"

    def poll(self, run_id):
        return launch.RunStatus(launch.RunStatus.FINISHED, exit_code=0)


def main():
    home = tempfile.TemporaryDirectory(prefix="launch-example.")
    uri = sys.argv[1] if len(sys.argv) > 1 else "memory://"
    scheduler = InHouseScheduler()
    launch.register_runner("in-house", scheduler)

    with launch.Transport(uri) as transport:
        queue = transport.create_queue(textwrap.dedent("""
            name: training
            entity: research
            resource: in-house
            config: {partition: "{{partition}}"}
            template_variables:
              partition: {type: string, enum: [cpu, gpu], default: cpu}
            """))
        for n in range(3):
            queue.push(name=f"train-{n}", entry_point=["python", "train.py"],
                       args=[f"--seed={n}"], template_values={"partition": "gpu"})

        with launch.Agent(transport, queues=[queue.ref], max_jobs=2,
                          config={"entity": "research", "launch_home": home.name, "gpus": 0},
                          use_environment=False) as agent:
            def on_event(event):
                print(f"{event['item_id']} {event['state']}")
                if not queue.items("pending") and not queue.items("running") \
                        and not queue.items("claimed"):
                    agent.stop()
            agent.on_event(on_event)
            agent.run()

        for job in scheduler.handed:
            print("handed:", " ".join(job["argv"]), job["config"])
        finished = queue.items("finished")
        print(f"{len(finished)} of 3 jobs finished")
    launch.unregister_runner("in-house")
    home.cleanup()
    return 0 if len(finished) == 3 else 1


if __name__ == "__main__":
    sys.exit(main())
