// The transports every conformance case runs against, and helpers shared by
// the cases: fresh stores, queues and jobs, temp dirs, child processes.
#ifndef LAUNCH_TESTS_CONFORMANCE_BACKENDS_HPP
#define LAUNCH_TESTS_CONFORMANCE_BACKENDS_HPP

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "launch/transport.hpp"
#include "support/temp_dir.hpp"

namespace conformance {

// A directory under $TMPDIR, removed with everything in it.
class TempDir : public launch_test::TempDir {
 public:
  TempDir() : launch_test::TempDir("launch-conformance") {}
};

// A fresh, empty store behind one transport. Destroying it removes the store.
struct Fixture {
  virtual ~Fixture() = default;
  std::string uri;  // opens more handles on the same store
  std::shared_ptr<launch::Transport> transport;
};

struct Backend {
  std::string name;
  bool cross_process;  // other OS processes may open its URI and share the store
  std::function<std::unique_ptr<Fixture>()> open;
  // Runs "UPDATE <its item table> SET <set> WHERE id = <item id>" on the
  // store behind the transport's back, as a damaged disk or a newer version
  // would write. Empty for a store without rows (memory://).
  std::function<void(Fixture&, const std::string& item_id, const std::string& set)> update_row;
};

// Every transport under test. Adding one is one entry in backends.cpp.
const std::vector<Backend>& backends();

// Runs `body` once per backend, each in its own doctest subcase named after
// it, on a fresh store. With `cross_process_only`, only backends whose store
// other processes can share.
void for_each_transport(const std::function<void(Fixture&)>& body,
                        bool cross_process_only = false);

// As for_each_transport, only for backends with update_row; `update_row`
// is the backend's, bound to the fixture.
using RowUpdate = std::function<void(const std::string& item_id, const std::string& set)>;
void for_each_transport_with_rows(const std::function<void(Fixture&, const RowUpdate&)>& body);

// `text` as an SQL string literal.
std::string sql_literal(const std::string& text);

// A queue in entity "team", resource local-process.
launch::QueueDef make_queue(const std::string& name, bool prioritized = false,
                            int lease_seconds = 30, int max_attempts = 3);
// A runnable job spec: an image and an entry point.
launch::JobSpec make_job(const std::string& name);

// Child processes: launch_queue_worker with `args`.
pid_t spawn_worker(const std::vector<std::string>& args);
// Waits for every pid until `timeout`; kills what is left then. Returns the
// exit codes in order (-1 for a process killed or ended by a signal).
std::vector<int> wait_all(const std::vector<pid_t>& pids, std::chrono::seconds timeout);

// True when `fd` becomes readable within `timeout`.
bool readable_within(int fd, std::chrono::milliseconds timeout);

std::vector<std::string> read_lines(const std::string& path);

}  // namespace conformance

#endif
