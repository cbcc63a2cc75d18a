// Container job dispatch through the local-container runner, beside
// `docker run` of the same image as the reference (the docker CLI is used
// for the reference only). Prints figures; asserts nothing.
//
//   build/bench/docker_bench [N]     N trivial containers per series (default 20)
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "docker/context.hpp"
#include "docker/engine.hpp"
#include "launch/agent.hpp"
#include "launch/log.hpp"
#include "launch/runner.hpp"
#include "launch/transport.hpp"
#include "util/fs.hpp"
#include "util/process.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

struct Stats {
  double p50, p90, mean;
};

Stats stats(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (double x : v) sum += x;
  return {v[v.size() / 2], v[std::min(v.size() - 1, v.size() * 9 / 10)], sum / v.size()};
}

void print(const char* what, const std::vector<double>& v) {
  Stats s = stats(v);
  std::printf("%-52s p50 %7.1f ms  p90 %7.1f ms  mean %7.1f ms\n", what, s.p50, s.p90, s.mean);
}

std::string build_image(launch::docker::Engine& engine) {
  std::string tag = "launch-bench-busybox:" + std::to_string(getpid());
  launch::util::TempDir dir("launch-bench-");
  std::string busybox = fs::exists("/bin/busybox") ? "/bin/busybox" : "/usr/bin/busybox";
  fs::copy_file(busybox, dir.path() + "/busybox");
  std::ofstream(dir.path() + "/Dockerfile")
      << "FROM scratch\nCOPY busybox /bin/busybox\n"
         "RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n";
  launch::docker::BuildOptions opts;
  opts.tag = tag;
  opts.dockerfile = "Dockerfile";
  engine.build_image(launch::docker::tar_directory(dir.path()), opts, [](const std::string&) {});
  return tag;
}

launch::ResolvedJob job(const std::string& image, int i, const std::string& log_dir) {
  launch::ResolvedJob j;
  j.queue.entity = "bench";
  j.queue.name = "docker";
  j.item.id = "bench-" + std::to_string(getpid()) + "-" + std::to_string(i);
  j.image = image;
  j.argv = {"true"};
  j.log_dir = log_dir;
  j.agent_id = "bench";
  return j;
}

// When each container of `queue` started, as the engine's event stream
// tells it (keyed by item id).
class StartEvents {
 public:
  explicit StartEvents(const std::string& queue) {
    thread_ = std::thread([this, queue] {
      launch::docker::Engine engine;
      engine.set_abort_flag(&abort_);
      launch::docker::LineSplitter lines([this](const std::string& line) { on_event(line); });
      std::string filters = R"({"type":["container"],"event":["start"],"label":["launch.queue=)" +
                            queue + R"("]})";
      try {
        engine.stream("GET", "/events?filters=" + launch::docker::url_encode(filters), "",
                      "application/json", {},
                      [&](const char* d, std::size_t n) { lines.feed(d, n); }, "events");
      } catch (const std::exception&) {
        // aborted at the end
      }
    });
  }
  ~StartEvents() {
    abort_ = true;
    thread_.join();
  }
  Clock::time_point wait_for(const std::string& item_id) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return started_.count(item_id) > 0; });
    return started_[item_id];
  }

 private:
  void on_event(const std::string& line) {
    auto at = Clock::now();
    const std::string key = "\"launch.item-id\":\"";
    auto p = line.find(key);
    if (p == std::string::npos) return;
    p += key.size();
    std::string id = line.substr(p, line.find('"', p) - p);
    std::lock_guard<std::mutex> lock(mu_);
    started_[id] = at;
    cv_.notify_all();
  }
  std::atomic<bool> abort_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Clock::time_point> started_;
  std::thread thread_;
};

launch::JobSpec trivial_job(const std::string& image) {
  launch::JobSpec s;
  s.name = "bench";
  s.source.kind = launch::JobSource::Kind::image;
  s.source.image = image;
  s.entry_point = {"true"};
  return s;
}

void wait_terminal(launch::Transport& t, const std::string& id) {
  while (!launch::is_terminal(t.get(id).state)) usleep(5000);
}

}  // namespace

int main(int argc, char** argv) {
  int n = argc > 1 ? std::atoi(argv[1]) : 20;
  launch::docker::Engine engine;
  std::printf("engine API %s, %d containers per series\n", engine.api_version().c_str(), n);
  std::string image = build_image(engine);
  launch::util::TempDir logs("launch-bench-logs-");
  launch::RunnerContext ctx;
  auto runner = launch::make_runner("local-container", ctx);

  // Dispatch: submit() returns once the container is running.
  std::vector<double> submit_ms, whole_ms;
  auto t_all = Clock::now();
  for (int i = 0; i < n; ++i) {
    auto t0 = Clock::now();
    auto run = runner->submit(job(image, i, logs.path()));
    submit_ms.push_back(ms_since(t0));
    launch::RunStatus s = run->poll();
    while (s.phase == launch::RunPhase::running) {
      usleep(2000);
      s = run->poll();
    }
    whole_ms.push_back(ms_since(t0));
  }
  double ours_total = ms_since(t_all);

  // The reference: the docker CLI, same image, same network setting.
  std::vector<double> cli_start_ms, cli_whole_ms;
  for (int i = 0; i < n; ++i) {
    auto t0 = Clock::now();
    std::string out =
        launch::util::run_process({"docker", "run", "-d", "--network", "none", image, "true"}).out;
    cli_start_ms.push_back(ms_since(t0));
    std::string id = out.substr(0, out.find('\n'));
    launch::util::run_process({"docker", "rm", "-f", id});
  }
  auto t_cli = Clock::now();
  for (int i = 0; i < n; ++i) {
    auto t0 = Clock::now();
    launch::util::run_process({"docker", "run", "--rm", "--network", "none", image, "true"});
    cli_whole_ms.push_back(ms_since(t0));
  }
  double cli_total = ms_since(t_cli);

  // Through an agent (in-process, memory:// store, noop builder).
  launch::set_log_level(launch::LogLevel::warn);
  launch::util::TempDir home("launch-bench-home-");
  auto transport = launch::open_transport("memory://");
  launch::QueueDef q;
  q.entity = "bench";
  q.name = "docker-" + std::to_string(getpid());
  q.resource = "local-container";
  transport->create_queue(q);
  launch::AgentConfig cfg;
  cfg.entity = q.entity;
  cfg.queues = {q.ref().str()};
  cfg.launch_home = home.path();
  cfg.gpus = 0;
  cfg.max_jobs = 4;
  std::vector<double> dispatch_ms;
  double agent_total = 0;
  {
    StartEvents events(q.ref().str());
    launch::Agent agent(cfg, transport);
    std::thread loop([&] { agent.run(); });
    for (int i = 0; i < n; ++i) {
      auto t0 = Clock::now();
      std::string id = transport->push(q.ref(), trivial_job(image));
      dispatch_ms.push_back(
          std::chrono::duration<double, std::milli>(events.wait_for(id) - t0).count());
      wait_terminal(*transport, id);
    }
    auto t_agent = Clock::now();
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) ids.push_back(transport->push(q.ref(), trivial_job(image)));
    for (const auto& id : ids) wait_terminal(*transport, id);
    agent_total = ms_since(t_agent);
    agent.stop(launch::StopMode::drain);
    loop.join();
  }

  print("agent: push -> container running (engine event)", dispatch_ms);
  print("launch: submit -> container running", submit_ms);
  print("docker run -d: command -> container running", cli_start_ms);
  print("launch: submit -> exited, logs copied, removed", whole_ms);
  print("docker run --rm: whole command", cli_whole_ms);
  std::printf("%-52s %7.2f containers/s\n", "launch runner, sequential", n * 1000.0 / ours_total);
  std::printf("%-52s %7.2f containers/s\n", "agent, max_jobs 4, pushed at once",
              n * 1000.0 / agent_total);
  std::printf("%-52s %7.2f containers/s\n", "docker run --rm loop", n * 1000.0 / cli_total);

  engine.remove_image(image, true);
  return 0;
}
