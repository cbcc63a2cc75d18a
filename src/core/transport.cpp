#include "launch/transport.hpp"

#include <poll.h>

#include <cerrno>
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <thread>

#include <fmt/format.h>

#include "launch/error.hpp"
#include "launch/home.hpp"
#include "util/enum_names.hpp"

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

namespace {
[[noreturn]] void no_records(const Transport& t) {
  throw Error(Errc::unsupported,
              fmt::format("transport {} keeps no records (accounts live on a launch server's "
                          "own store)",
                          t.uri()));
}
}  // namespace

std::optional<std::string> Transport::get_record(const std::string&, const std::string&) {
  no_records(*this);
}
bool Transport::insert_record(const std::string&, const std::string&, const std::string&) {
  no_records(*this);
}
bool Transport::replace_record(const std::string&, const std::string&, const std::string&,
                               const std::string&) {
  no_records(*this);
}
bool Transport::delete_record(const std::string&, const std::string&) { no_records(*this); }
std::vector<std::pair<std::string, std::string>> Transport::list_records(const std::string&) {
  no_records(*this);
}

Transport::LogChunk Transport::read_log(const std::string& item_id, const std::string& stream,
                                        std::uint64_t offset) {
  if (stream != "stdout" && stream != "stderr" && stream != "build") {
    throw Error(Errc::invalid,
                fmt::format("log stream \"{}\": expected stdout, stderr or build", stream));
  }
  LogChunk out;
  out.next_offset = offset;
  std::string path = run_directory(launch_home(), item_id) + "/" + stream + ".log";
  std::ifstream in(path, std::ios::binary);
  if (!in) return out;  // not written yet
  in.seekg(0, std::ios::end);
  auto size = static_cast<std::uint64_t>(in.tellg());
  if (offset >= size) return out;
  std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(size - offset, kMaxLogChunkBytes));
  out.data.resize(n);
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(&out.data[0], static_cast<std::streamsize>(n));
  out.data.resize(static_cast<std::size_t>(in.gcount()));
  out.next_offset = offset + out.data.size();
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

namespace {

const util::EnumName<AgentStatus> kAgentStatuses[] = {{AgentStatus::polling, "polling"},
                                                      {AgentStatus::running, "running"},
                                                      {AgentStatus::stopped, "stopped"},
                                                      {AgentStatus::lost, "lost"},
                                                      {AgentStatus::dead, "dead"}};

}  // namespace

const char* to_string(AgentStatus s) { return util::enum_name(kAgentStatuses, s, "polling"); }

AgentStatus parse_agent_status(const std::string& text) {
  return util::enum_parse(kAgentStatuses, text, "agent status");
}

std::string default_transport_uri() {
  const char* uri = std::getenv("LAUNCH_QUEUE_URI");
  if (uri && *uri) return uri;
  return "sqlite://" + launch_home() + "/launch.db";
}

}  // namespace launch
