#include "launch/transport.hpp"

#include <poll.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <thread>

#include <fmt/format.h>

#include "launch/error.hpp"

namespace launch {

Transport::~Transport() = default;

FinishAndClaim Transport::finish_and_claim(const std::string& item_id,
                                           const std::string& agent_id, int exit_code,
                                           const std::vector<QueueRef>& queues) {
  FinishAndClaim out;
  out.finished = finish(item_id, agent_id, exit_code);
  out.next = claim(queues, agent_id);
  return out;
}

bool Transport::wait_for_work(std::chrono::milliseconds timeout) {
  int fd = notify_fd();
  if (fd < 0) {
    std::this_thread::sleep_for(timeout);
    return false;
  }
  struct pollfd p = {fd, POLLIN, 0};
  int rc;
  do {
    rc = ::poll(&p, 1, static_cast<int>(timeout.count()));
  } while (rc < 0 && errno == EINTR);
  if (rc > 0) {
    drain_notify();
    return true;
  }
  return false;
}

const char* to_string(AgentStatus s) {
  switch (s) {
    case AgentStatus::polling: return "polling";
    case AgentStatus::running: return "running";
    case AgentStatus::stopped: return "stopped";
  }
  return "polling";
}

AgentStatus parse_agent_status(const std::string& text) {
  if (text == "polling") return AgentStatus::polling;
  if (text == "running") return AgentStatus::running;
  if (text == "stopped") return AgentStatus::stopped;
  throw Error(Errc::invalid,
              fmt::format("agent status \"{}\": expected polling, running or stopped", text));
}

std::string launch_home() {
  const char* home = std::getenv("LAUNCH_HOME");
  if (home && *home) return home;
  const char* user_home = std::getenv("HOME");
  std::string base;
  if (user_home && *user_home) {
    base = user_home;
  } else if (const struct passwd* pw = getpwuid(getuid())) {
    base = pw->pw_dir;
  } else {
    throw Error(Errc::invalid, "LAUNCH_HOME is not set and the home directory is unknown");
  }
  return base + "/.local/share/launch";
}

std::string default_transport_uri() {
  const char* uri = std::getenv("LAUNCH_QUEUE_URI");
  if (uri && *uri) return uri;
  return "sqlite://" + launch_home() + "/launch.db";
}

}  // namespace launch
