"""Tests of the Python ctypes module over liblaunch_c (LAUNCH_C_LIBRARY)."""

import os
import shutil
import tempfile
import threading
import unittest

import launch

QUEUE_YAML = """\
name: {name}
entity: py-test
resource: {resource}
config: {{partition: gpu, gpus: "{{{{gpus}}}}"}}
template_variables:
  gpus: {{type: integer, minimum: 1, maximum: 4, default: 1}}
"""


class RecordingRunner(launch.Runner):
    """An in-house scheduler in Python: records every job, finishes each run
    at its second poll. A job named "bad" is refused, one named "lost" fails
    at poll."""

    def __init__(self):
        self.jobs = {}
        self.polls = {}
        self.cancelled = []
        self.closed = threading.Event()
        self.hold = False
        self.reattached = []

    def submit(self, job):
        if job["item"]["spec"]["name"] == "bad":
            raise RuntimeError("no GPUs left in partition gpu")
        run_id = f"py-{len(self.jobs)}"
        self.jobs[run_id] = job
        return run_id

    def poll(self, run_id):
        if run_id in self.cancelled:
            return launch.RunStatus(launch.RunStatus.STOPPED)
        if self.jobs[run_id]["item"]["spec"]["name"] == "lost":
            raise KeyError(f"scheduler has no job {run_id}")
        self.polls[run_id] = self.polls.get(run_id, 0) + 1
        if self.hold or self.polls[run_id] < 2:
            return launch.RunStatus.RUNNING
        return launch.RunStatus(launch.RunStatus.FINISHED, exit_code=0)

    def cancel(self, run_id, grace):
        self.cancelled.append(run_id)

    def reattach(self, item):
        """The run submitted for the item, unless the job is named "gone"."""
        self.reattached.append(item["id"])
        if item["spec"]["name"] == "gone":
            return None
        for run_id, job in self.jobs.items():
            if job["item"]["id"] == item["id"]:
                return run_id
        return None

    def close(self):
        self.closed.set()


class LaunchTestCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="launch-py-test.")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.config = {"entity": "py-test", "launch_home": os.path.join(self.dir, "home"),
                       "gpus": 0}

    def agent(self, transport, queue, **kwargs):
        agent = launch.Agent(transport, config=self.config, queues=[queue],
                             use_environment=False, **kwargs)
        self.addCleanup(agent.close)
        return agent

    def runner(self, name):
        runner = RecordingRunner()
        launch.register_runner(name, runner)
        self.addCleanup(launch.unregister_runner, name)
        return runner

    def step_until_running(self, agent, transport, queue, count, turns=1000):
        """Steps `agent` until `count` items of `queue` are running."""
        for _ in range(turns):
            if len(transport.items(queue, "running")) == count:
                return
            agent.step(0.01)
        self.assertEqual(len(transport.items(queue, "running")), count)

    def step_until_idle(self, agent, transport, queue, turns=5000):
        for _ in range(turns):
            if (not transport.items(queue, "pending") and not transport.items(queue, "claimed")
                    and not transport.items(queue, "running") and agent.running_jobs == 0):
                return
            self.assertTrue(agent.step(0.01))
        self.fail("the agent never emptied the queue")


class VersionTest(unittest.TestCase):
    def test_version_matches_the_library(self):
        self.assertRegex(launch.version(), r"^\d+\.\d+\.\d+$")
        major, minor, patch = map(int, launch.version().split("."))
        self.assertEqual(launch.version_number(), major * 10000 + minor * 100 + patch)


class QueueTest(LaunchTestCase):
    def test_create_get_list_delete(self):
        with launch.Transport("memory://") as t:
            q = t.create_queue(QUEUE_YAML.format(name="a", resource="kubernetes"))
            self.assertEqual(q.ref, "py-test/a")
            self.assertEqual(q.resource, "kubernetes")
            t.create_queue({"name": "b", "entity": "py-test"})
            self.assertEqual(t.queue("py-test/a").name, "a")
            self.assertEqual(sorted(x.name for x in t.queues()), ["a", "b"])
            with self.assertRaises(launch.ExistsError):
                t.create_queue({"name": "b", "entity": "py-test"})
            t.queue("py-test/b").delete()
            with self.assertRaises(launch.NotFoundError) as cm:
                t.queue("py-test/b")
            self.assertIn("b", str(cm.exception))
            self.assertEqual(cm.exception.code, -2)

    def test_unknown_queue_key_is_named(self):
        with launch.Transport("memory://") as t:
            with self.assertRaises(launch.InvalidError) as cm:
                t.create_queue("name: a\nentity: py-test\ncolour: blue\n")
            self.assertIn("colour", str(cm.exception))
            self.assertIsInstance(cm.exception, ValueError)

    def test_config_a_runner_refuses_is_refused_naming_the_option(self):
        with launch.Transport("memory://") as t:
            # The config is the wrong one for local-process: "partition".
            with self.assertRaises(launch.InvalidError) as cm:
                t.create_queue(QUEUE_YAML.format(name="a", resource="local-process"))
            self.assertIn('unknown option "partition"', str(cm.exception))
            # W&B's resource-keyed shape: another resource's key is named.
            with self.assertRaises(launch.InvalidError) as cm:
                t.create_queue({"name": "b", "entity": "py-test", "resource": "local-process",
                                "config": {"kubernetes": {"spec": {}}}})
            self.assertIn('key "kubernetes"', str(cm.exception))
            self.assertEqual(t.queues(), [])
            q = t.create_queue({"name": "c", "entity": "py-test", "resource": "local-process",
                                "config": {"local-process": {"env": {"A": "a"}}}})
            with self.assertRaises(launch.InvalidError) as cm:
                q.push(name="x", entry_point=["true"], resource_args={"bogus": 1})
            self.assertIn('unknown option "bogus"', str(cm.exception))
            self.assertEqual(q.items(), [])

    def test_bad_transport_uri(self):
        with self.assertRaises(launch.InvalidError):
            launch.Transport("no-scheme")
        with self.assertRaises(launch.NotFoundError) as cm:
            launch.Transport("nosuch://x")
        self.assertIn("nosuch", str(cm.exception))

    def test_closed_transport_refuses(self):
        t = launch.Transport("memory://")
        t.close()
        t.close()
        with self.assertRaises(launch.StateError):
            t.queues()


class PushTest(LaunchTestCase):
    def test_push_get_list_cancel(self):
        with launch.Transport("memory://") as t:
            q = t.create_queue(QUEUE_YAML.format(name="jobs", resource="kubernetes"))
            first = q.push(name="first", entry_point=["echo", "hi"])
            second = t.push("py-test/jobs", {"name": "second"}, template_values={"gpus": "2"})
            self.assertEqual(t.item(first)["spec"]["entry_point"], ["echo", "hi"])
            self.assertEqual([i["id"] for i in q.items()], [first, second])
            self.assertEqual(t.cancel(first)["state"], "stopped")
            with self.assertRaises(launch.StateError):
                t.cancel(first)
            self.assertEqual([i["id"] for i in q.items("pending")], [second])
            with self.assertRaises(launch.NotFoundError):
                t.item("no-such-item")

    def test_bad_push_names_the_variable(self):
        with launch.Transport("memory://") as t:
            q = t.create_queue(QUEUE_YAML.format(name="jobs", resource="kubernetes"))
            with self.assertRaises(launch.InvalidError) as cm:
                q.push(name="big", template_values={"gpus": "8"})
            self.assertIn("gpus", str(cm.exception))
            self.assertIn("8", str(cm.exception))
            self.assertEqual(q.items(), [])


class AgentTest(LaunchTestCase):
    def test_hundred_jobs_through_a_python_runner_on_sqlite(self):
        runner = self.runner("py-sched")
        uri = "sqlite://" + os.path.join(self.dir, "launch.db")
        with launch.Transport(uri) as t:
            q = t.create_queue(QUEUE_YAML.format(name="hundred", resource="py-sched"))
            ids = [q.push(name=f"job-{i}", entry_point=["train", str(i)]) for i in range(100)]
            events = []
            agent = self.agent(t, q.ref, max_jobs=8)
            agent.on_event(events.append)
            self.step_until_idle(agent, t, q.ref)
            finished = q.items("finished")
            self.assertEqual(sorted(i["id"] for i in finished), sorted(ids))
            self.assertEqual(len(runner.jobs), 100)
            argvs = sorted(job["argv"][1] for job in runner.jobs.values())
            self.assertEqual(argvs, sorted(str(i) for i in range(100)))
            self.assertEqual(next(iter(runner.jobs.values()))["config"]["gpus"], 1)
            self.assertEqual(sum(1 for e in events if e["state"] == "finished"), 100)
            agent.stop()
            while agent.step(0.01):
                pass

    def test_a_raising_runner_fails_the_item_and_the_agent_goes_on(self):
        runner = self.runner("py-raise")
        with launch.Transport("memory://") as t:
            q = t.create_queue(QUEUE_YAML.format(name="raise", resource="py-raise"))
            bad = q.push(name="bad")
            lost = q.push(name="lost")
            good = q.push(name="good")
            agent = self.agent(t, q.ref)
            self.step_until_idle(agent, t, q.ref)
            item = t.item(bad)
            self.assertEqual(item["state"], "failed")
            self.assertIn("RuntimeError: no GPUs left in partition gpu", item["error"]["message"])
            item = t.item(lost)
            self.assertEqual(item["state"], "failed")
            self.assertIn("scheduler has no job", item["error"]["message"])
            self.assertEqual(t.item(good)["state"], "finished")
            self.assertEqual(len(runner.jobs), 2)

    def test_run_until_stopped_from_an_event(self):
        self.runner("py-run")
        with launch.Transport("memory://") as t:
            q = t.create_queue(QUEUE_YAML.format(name="run", resource="py-run"))
            item = q.push(name="once")
            agent = self.agent(t, q.ref)
            agent.on_event(lambda e: agent.stop() if e["state"] == "finished" else None)
            agent.run()
            self.assertEqual(t.item(item)["state"], "finished")
            self.assertTrue(agent.id)

    def test_events_and_agent_records_carry_every_field(self):
        self.runner("py-fields")
        with launch.Transport("memory://") as t:
            q = t.create_queue(QUEUE_YAML.format(name="fields", resource="py-fields"))
            item = q.push(name="once")
            events = []
            agent = self.agent(t, q.ref, max_jobs=3)
            agent.on_event(events.append)
            self.step_until_idle(agent, t, q.ref)
            self.assertEqual(set(events[-1]), {"item_id", "queue", "state", "run_id",
                                               "exit_code", "message"})
            self.assertEqual((events[-1]["item_id"], events[-1]["state"]), (item, "finished"))
            self.assertEqual(events[-1]["run_id"], t.item(item)["run_id"])
            agents = t.agents()
            self.assertEqual(len(agents), 1)
            record = agents[0]
            self.assertEqual(set(record), {"id", "host", "pid", "version", "entity", "queues",
                                           "status", "max_jobs", "running_jobs", "started_at",
                                           "last_seen"})
            self.assertEqual(record["id"], agent.id)
            self.assertEqual(record["pid"], os.getpid())
            self.assertEqual(record["queues"], [q.ref])
            self.assertEqual(record["max_jobs"], 3)
            self.assertEqual(record["version"], launch.version())
            self.assertIn(record["status"], ("polling", "running"))
            agent.stop()
            while agent.step(0.01):
                pass
            self.assertEqual(t.agents()[0]["status"], "stopped")

    def test_event_callback_errors_come_out_of_step(self):
        self.runner("py-events")
        with launch.Transport("memory://") as t:
            q = t.create_queue(QUEUE_YAML.format(name="ev", resource="py-events"))
            q.push(name="once")
            agent = self.agent(t, q.ref)

            def explode(event):
                raise ArithmeticError("event handler broke")

            agent.on_event(explode)
            with self.assertRaises(ArithmeticError):
                for _ in range(1000):
                    agent.step(0.01)
            agent.on_event(None)
            self.step_until_idle(agent, t, q.ref)

    def test_stop_with_cancel_cancels_the_run(self):
        runner = self.runner("py-hold")
        runner.hold = True
        with launch.Transport("memory://") as t:
            q = t.create_queue(QUEUE_YAML.format(name="hold", resource="py-hold"))
            item = q.push(name="held")
            with self.agent(t, q.ref) as agent:
                self.step_until_running(agent, t, q.ref, 1)
                self.assertEqual(t.item(item)["state"], "running")
                self.assertEqual(agent.running_jobs, 1)
                with self.assertRaises(launch.StateError):
                    q.delete()
                agent.stop(cancel=True)
                while agent.step(0.01):
                    pass
            self.assertEqual(runner.cancelled, ["py-0"])
            self.assertEqual(t.item(item)["state"], "pending")

    def test_a_restarted_agent_follows_its_runs_again(self):
        runner = self.runner("py-resume")
        runner.hold = True
        with launch.Transport("memory://") as t:
            q = t.create_queue(QUEUE_YAML.format(name="resume", resource="py-resume"))
            kept = q.push(name="kept")
            gone = q.push(name="gone")
            first = launch.Agent(t, config=self.config, queues=[q.ref], use_environment=False,
                                 max_jobs=2)
            self.step_until_running(first, t, q.ref, 2)
            first.close()  # as if killed: no drain, no cancel; the runs go on
            runner.hold = False
            second = self.agent(t, q.ref, max_jobs=2)
            self.step_until_idle(second, t, q.ref)
            self.assertEqual(sorted(runner.reattached), sorted([kept, gone]))
            self.assertEqual(t.item(kept)["state"], "finished")
            item = t.item(gone)
            self.assertEqual(item["state"], "failed")
            self.assertIn("agent restarted; run lost", item["error"]["message"])
            self.assertEqual(len(runner.jobs), 2)  # nothing was submitted twice

    def test_bad_agent_config_names_the_key(self):
        with launch.Transport("memory://") as t:
            with self.assertRaises(launch.InvalidError) as cm:
                launch.Agent(t, config="entity: x\nqueues: [a]\nwibble: 1\n")
            self.assertIn("wibble", str(cm.exception))
            with self.assertRaises(launch.LaunchIOError):
                launch.Agent(t, config_path=os.path.join(self.dir, "missing.yaml"))
            with self.assertRaises(launch.InvalidError):
                launch.Agent(t, config=self.config, max_jobs=0)


class RunnerRegistrationTest(unittest.TestCase):
    def test_close_runs_when_unregistered(self):
        runner = RecordingRunner()
        launch.register_runner("py-close", runner)
        self.assertFalse(runner.closed.is_set())
        launch.unregister_runner("py-close")
        self.assertTrue(runner.closed.is_set())
        with self.assertRaises(launch.NotFoundError):
            launch.unregister_runner("py-close")

    def test_only_runners_register(self):
        with self.assertRaises(launch.InvalidError):
            launch.register_runner("py-x", object())
        with self.assertRaises(launch.InvalidError):
            launch.register_runner("", RecordingRunner())


class LogTest(LaunchTestCase):
    def test_sink_and_level(self):
        lines = []
        launch.set_log_sink(lambda level, line: lines.append((level, line)))
        self.addCleanup(launch.set_log_sink, None)
        self.addCleanup(launch.set_log_level, launch.LOG_INFO)
        with launch.Transport("memory://") as t:
            launch.set_log_level(launch.LOG_ERROR)
            self.agent(t, "py-test/quiet").step(0)
            self.assertEqual(lines, [])
            launch.set_log_level(launch.LOG_INFO)
            self.agent(t, "py-test/loud").step(0)
            self.assertTrue(lines)
            self.assertTrue(all(launch.LOG_ERROR <= lvl <= launch.LOG_INFO for lvl, _ in lines))
            self.assertTrue(any("py-test/loud" in line for _, line in lines))
        with self.assertRaises(launch.InvalidError):
            launch.set_log_level(9)


if __name__ == "__main__":
    unittest.main()
