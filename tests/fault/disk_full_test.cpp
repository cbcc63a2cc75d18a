// Faults made for real: a small tmpfs that the test fills. The suite runs
// in a mount namespace of its own (tests/CMakeLists.txt starts it under
// `unshare --mount --map-root-user`), so its mounts need no privilege and
// vanish with the process whatever happens.
#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <string>

#include <doctest/doctest.h>

#include "launch/launch.hpp"
#include "support/temp_dir.hpp"

using namespace launch;
using launch_test::TempDir;
using std::chrono::milliseconds;

namespace {

class SmallDisk {
 public:
  explicit SmallDisk(const char* size) {
    std::string opts = std::string("size=") + size;
    if (::mount("tmpfs", dir_.path().c_str(), "tmpfs", 0, opts.c_str()) != 0) {
      FAIL("cannot mount a tmpfs on " << dir_.path() << ": " << std::strerror(errno)
                                      << " (is the suite running under unshare?)");
    }
  }
  ~SmallDisk() { ::umount2(dir_.path().c_str(), MNT_DETACH); }
  const std::string& path() const { return dir_.path(); }

  // Writes until the file system refuses.
  void fill() {
    std::string p = dir_ / "filler";
    int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    REQUIRE(fd >= 0);
    static const char block[4096] = {};
    while (::write(fd, block, sizeof block) > 0) {
    }
    int err = errno;
    ::close(fd);
    REQUIRE(err == ENOSPC);
  }

 private:
  TempDir dir_;
};

// A local-process queue team/q on `uri` and the config of an in-process
// agent polling it with its home in `home`.
struct LocalSite {
  std::shared_ptr<Transport> t;
  AgentConfig config;
  LocalSite(const std::string& uri, const std::string& home) : t(open_transport(uri)) {
    QueueDef q;
    q.entity = "team";
    q.name = "q";
    q.resource = "local-process";
    t->create_queue(q);
    config.entity = "team";
    config.queues = {"q"};
    config.launch_home = home;
    config.gpus = 0;
  }
};

}  // namespace

TEST_CASE("fault: a job whose logs cannot be written says that its disk is full") {
  SmallDisk disk("1m");
  LocalSite site("memory://", disk.path());
  auto& t = site.t;
  Agent agent(site.config, t);
  agent.step(milliseconds(0));  // registered, its files made
  disk.fill();
  JobSpec s;
  s.author = "alice";
  s.entry_point = {"/bin/sh", "-c", "echo hello"};
  std::string id = t->push(QueueRef{"team", "q"}, s);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!is_terminal(t->get(id).state)) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    agent.step(milliseconds(50));
  }
  QueueItem item = t->get(id);
  CHECK(item.state == ItemState::failed);
  REQUIRE(item.error);
  INFO(item.error->message);
  CHECK(item.error->message.rfind("exited with code 1; the file system of its logs", 0) == 0);
  CHECK(item.error->message.find(disk.path() + "/runs/" + id) != std::string::npos);
  CHECK(item.error->message.find("is full") != std::string::npos);
}

TEST_CASE("fault: a finish the full store cannot take lands once there is room; one run") {
  SmallDisk disk("4m");
  TempDir home, work;
  LocalSite site("sqlite://" + disk.path() + "/launch.db", home.path());
  auto& t = site.t;
  Agent agent(site.config, t);
  // The job counts its runs and ends when the test says so.
  std::string go = work / "go", runs = work / "runs";
  JobSpec s;
  s.author = "alice";
  s.entry_point = {"/bin/sh", "-c",
                   "echo ran >> " + runs + "; while [ ! -e " + go + " ]; do sleep 0.02; done"};
  std::string id = t->push(QueueRef{"team", "q"}, s);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  auto step_until = [&](const std::function<bool()>& done) {
    while (!done()) {
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      agent.step(milliseconds(50));
    }
  };
  step_until([&] { return t->get(id).state == ItemState::running; });
  disk.fill();
  int go_fd = ::open(go.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  REQUIRE(go_fd >= 0);
  ::close(go_fd);
  // The run ends; its finish cannot be written, so it is kept.
  std::string journal = home / ("agents/" + agent.id() + ".reports");
  step_until([&] { return ::access(journal.c_str(), F_OK) == 0; });
  CHECK(t->get(id).state == ItemState::running);
  // Room again: the kept finish lands, and the job ran once.
  REQUIRE(::unlink((disk.path() + "/filler").c_str()) == 0);
  step_until([&] { return is_terminal(t->get(id).state); });
  QueueItem item = t->get(id);
  CHECK(item.state == ItemState::finished);
  CHECK(item.exit_code == 0);
  CHECK(item.attempt == 1);
  CHECK(::access(journal.c_str(), F_OK) != 0);
  int fd = ::open(runs.c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  char buf[64];
  ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  CHECK(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0) == "ran\n");
}
