// The local-process runner, driven directly with real processes.
#include <signal.h>

#include <cerrno>
#include <string>

#include "helpers.hpp"
#include "launch/error.hpp"
#include "launch/runner.hpp"

using namespace launch;
using launch_test::TempDir;
using launch_test::slurp;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

ResolvedJob job_in(const TempDir& dir, std::vector<std::string> argv,
                   const std::string& config = "{}") {
  ResolvedJob job;
  job.item.id = "item-1";
  job.argv = std::move(argv);
  job.config = config;
  job.log_dir = dir.path();
  return job;
}

std::unique_ptr<Runner> local_runner() { return make_runner("local-process", RunnerContext{}); }

}  // namespace

TEST_CASE("local-process: exit code 0 finishes, non-zero fails with the code") {
  TempDir dir;
  auto runner = local_runner();
  auto ok = runner->submit(job_in(dir, {"/bin/true"}));
  RunStatus st = ok->wait(seconds(20));
  CHECK(st.phase == RunPhase::finished);
  CHECK(st.exit_code == 0);

  auto bad = runner->submit(job_in(dir, {"/bin/sh", "-c", "exit 7"}));
  st = bad->wait(seconds(20));
  CHECK(st.phase == RunPhase::failed);
  CHECK(st.exit_code == 7);
  CHECK(st.message == "exited with code 7");
}

TEST_CASE("local-process: a process killed by a signal fails naming the signal") {
  TempDir dir;
  auto run = local_runner()->submit(job_in(dir, {"/bin/sh", "-c", "kill -9 $$"}));
  RunStatus st = run->wait(seconds(20));
  CHECK(st.phase == RunPhase::failed);
  CHECK(st.message.find("killed by signal 9 (SIGKILL)") != std::string::npos);
  CHECK(st.exit_code == 128 + 9);
}

TEST_CASE("local-process: args, env, working_dir reach the process; output goes to logs") {
  TempDir dir;
  TempDir work;
  auto job = job_in(dir,
                    {"/bin/sh", "-c",
                     "echo \"args=$1,$2\"; echo \"env=$FROM_JOB,$FROM_CONFIG,$SHARED\"; "
                     "echo \"cwd=$(pwd)\"; echo oops >&2",
                     "sh", "a b", "c"},
                    R"({"env": {"FROM_CONFIG": "cfg", "SHARED": "config"},
                        "working_dir": ")" + work.path() + R"("})");
  job.env = {{"FROM_JOB", "job"}, {"SHARED", "job"}};
  auto run = local_runner()->submit(job);
  RunStatus st = run->wait(seconds(20));
  REQUIRE(st.phase == RunPhase::finished);
  std::string out = slurp(dir / "stdout.log");
  CHECK(out.find("args=a b,c\n") != std::string::npos);
  CHECK(out.find("env=job,cfg,job\n") != std::string::npos);  // the job's env wins
  CHECK(out.find("cwd=" + work.path() + "\n") != std::string::npos);
  CHECK(slurp(dir / "stderr.log") == "oops\n");
}

TEST_CASE("local-process: GPUs handed out become CUDA_VISIBLE_DEVICES") {
  TempDir dir;
  auto job = job_in(dir, {"/bin/sh", "-c", "echo \"$CUDA_VISIBLE_DEVICES\""});
  job.gpus = {1, 3};
  auto run = local_runner()->submit(job);
  REQUIRE(run->wait(seconds(20)).phase == RunPhase::finished);
  CHECK(slurp(dir / "stdout.log") == "1,3\n");
}

TEST_CASE("local-process: timeout_seconds fails the run with a clear reason") {
  TempDir dir;
  auto run = local_runner()->submit(
      job_in(dir, {"/bin/sleep", "30"}, R"({"timeout_seconds": 0.3})"));
  RunStatus st = run->wait(seconds(20));
  CHECK(st.phase == RunPhase::failed);
  CHECK(st.message == "timed out after 0.3s");
}

TEST_CASE("local-process: cancel stops the whole process group") {
  TempDir dir;
  // The job starts a child in its group and waits; both ignore nothing.
  auto run = local_runner()->submit(
      job_in(dir, {"/bin/sh", "-c", "sleep 30 & echo $$ > " + (dir / "pid") + "; wait"}));
  launch_test::until([&] { return launch_test::exists(dir / "pid") &&
                                  !slurp(dir / "pid").empty(); },
                     [] { usleep(10000); });
  pid_t pgid = static_cast<pid_t>(std::stol(slurp(dir / "pid")));
  CHECK(std::to_string(pgid) == run->id());
  CHECK(::kill(-pgid, 0) == 0);
  run->cancel(milliseconds(2000));
  RunStatus st = run->wait(seconds(20));
  CHECK(st.phase == RunPhase::stopped);
  CHECK(::kill(-pgid, 0) == -1);
  CHECK(errno == ESRCH);
}

TEST_CASE("local-process: a process that ignores SIGTERM is killed after the grace") {
  TempDir dir;
  auto run = local_runner()->submit(job_in(
      dir, {"/bin/sh", "-c", "trap '' TERM; echo up > " + (dir / "up") + "; sleep 30"}));
  launch_test::until([&] { return !slurp(dir / "up").empty(); }, [] { usleep(10000); });
  pid_t pgid = static_cast<pid_t>(std::stol(run->id()));
  run->cancel(milliseconds(200));
  RunStatus st = run->wait(seconds(20));
  CHECK(st.phase == RunPhase::stopped);
  CHECK(::kill(-pgid, 0) == -1);
}

TEST_CASE("local-process: bad input is refused naming what is wrong") {
  TempDir dir;
  auto runner = local_runner();
  CHECK_THROWS_WITH_AS(runner->submit(job_in(dir, {"/no/such/binary"})),
                       doctest::Contains("/no/such/binary"), Error);
  CHECK_THROWS_WITH_AS(runner->submit(job_in(dir, {})), doctest::Contains("entry_point"),
                       Error);
  CHECK_THROWS_WITH_AS(runner->submit(job_in(dir, {"/bin/true"}, R"({"volumes": []})")),
                       doctest::Contains("\"volumes\""), Error);
  CHECK_THROWS_WITH_AS(
      runner->submit(job_in(dir, {"/bin/true"}, R"({"working_dir": "/no/such/dir"})")),
      doctest::Contains("/no/such/dir"), Error);
  CHECK_THROWS_WITH_AS(
      runner->submit(job_in(dir, {"/bin/true"}, R"({"timeout_seconds": "soon"})")),
      doctest::Contains("timeout_seconds"), Error);
}

TEST_CASE("local-process: dropping a running handle kills its process group") {
  TempDir dir;
  pid_t pgid;
  {
    auto run = local_runner()->submit(job_in(dir, {"/bin/sleep", "30"}));
    pgid = static_cast<pid_t>(std::stol(run->id()));
    CHECK(::kill(-pgid, 0) == 0);
  }
  CHECK(::kill(-pgid, 0) == -1);
}

TEST_CASE("RunPhase names") {
  CHECK(std::string(to_string(RunPhase::running)) == "running");
  CHECK(std::string(to_string(RunPhase::preempted)) == "preempted");
}
