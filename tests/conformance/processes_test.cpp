// Producers and consumers in separate OS processes (launch_queue_worker) on
// one store, for every backend whose store processes share.
#include <sys/types.h>

#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "backends.hpp"
#include "launch/transport.hpp"

using namespace launch;
using conformance::Fixture;
using conformance::TempDir;

namespace {

struct Outcome {
  std::vector<std::vector<std::string>> claimed;  // per claimer, the ids it claimed
  std::size_t finished = 0;
  std::size_t failed = 0;
  std::size_t total = 0;
};

// `pushers` processes push `per_pusher` jobs each onto a fresh queue while
// `claimers` processes claim and end them; waits for all, bounded in time.
Outcome run_processes(Fixture& f, const std::string& queue, int pushers, int per_pusher,
                      int claimers, const std::string& mode) {
  Transport& t = *f.transport;
  t.create_queue(conformance::make_queue(queue));
  const std::string ref = "team/" + queue;
  TempDir dir;
  const std::string done = dir.path() + "/producers-done";

  std::vector<pid_t> claimer_pids;
  for (int i = 0; i < claimers; ++i) {
    claimer_pids.push_back(conformance::spawn_worker(
        {"claim", f.uri, ref, dir.path() + "/claimed-" + std::to_string(i), done, mode}));
  }
  std::vector<pid_t> pusher_pids;
  for (int i = 0; i < pushers; ++i) {
    pusher_pids.push_back(conformance::spawn_worker(
        {"push", f.uri, ref, std::to_string(per_pusher), "p" + std::to_string(i)}));
  }
  auto pushed = conformance::wait_all(pusher_pids, std::chrono::seconds(150));
  std::ofstream(done).put('\n');
  auto claimed = conformance::wait_all(claimer_pids, std::chrono::seconds(150));
  for (int code : pushed) CHECK(code == 0);
  for (int code : claimed) CHECK(code == 0);

  Outcome out;
  for (int i = 0; i < claimers; ++i) {
    out.claimed.push_back(conformance::read_lines(dir.path() + "/claimed-" + std::to_string(i)));
  }
  for (const QueueItem& it : t.list({QueueRef{"team", queue}, std::nullopt, "", 0})) {
    ++out.total;
    if (it.state == ItemState::finished) ++out.finished;
    if (it.state == ItemState::failed) ++out.failed;
  }
  return out;
}

// Every id claimed by exactly one claimer, and every item claimed.
void check_claims_disjoint_and_complete(const Outcome& out, std::size_t expected) {
  std::set<std::string> all;
  std::size_t claims = 0;
  for (const auto& ids : out.claimed) {
    claims += ids.size();
    all.insert(ids.begin(), ids.end());
  }
  CHECK(claims == expected);
  CHECK(all.size() == expected);
}

}  // namespace

TEST_CASE("conformance: producers and consumers in separate processes end every item once") {
  conformance::for_each_transport(
      [](Fixture& f) {
        // Odd-numbered jobs exit 1: the terminal counts are exact.
        Outcome out = run_processes(f, "mixed", 2, 150, 2, "parity");
        CHECK(out.total == 300);
        CHECK(out.finished == 150);
        CHECK(out.failed == 150);
        check_claims_disjoint_and_complete(out, 300);
      },
      true);
}

TEST_CASE("conformance: 4 pushing and 2 claiming processes finish exactly 10,000 items") {
  conformance::for_each_transport(
      [](Fixture& f) {
        Outcome out = run_processes(f, "bulk", 4, 2500, 2, "all");
        CHECK(out.total == 10000);
        CHECK(out.finished == 10000);
        CHECK(out.failed == 0);
        check_claims_disjoint_and_complete(out, 10000);
        CHECK(f.transport->list({std::nullopt, ItemState::pending, "", 0}).empty());
      },
      true);
}

TEST_CASE("conformance: a push from another process wakes notify_fd") {
  conformance::for_each_transport(
      [](Fixture& f) {
        Transport& t = *f.transport;
        t.create_queue(conformance::make_queue("remote-wake"));
        t.drain_notify();
        CHECK_FALSE(conformance::readable_within(t.notify_fd(), std::chrono::milliseconds(0)));
        pid_t pid = conformance::spawn_worker({"push", f.uri, "team/remote-wake", "1", "w"});
        CHECK(conformance::readable_within(t.notify_fd(), std::chrono::seconds(30)));
        CHECK(conformance::wait_all({pid}, std::chrono::seconds(60)) == std::vector<int>{0});
        CHECK(t.list().size() == 1);
      },
      true);
}
