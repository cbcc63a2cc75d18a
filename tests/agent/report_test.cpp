// Reports the store cannot take: kept, retried in order until they land,
// and delivered by the next start of the agent, so a finished job is never
// left to its lease and run again.
#include <dirent.h>

#include <chrono>
#include <string>

#include "agent/report_journal.hpp"
#include "helpers.hpp"
#include "launch/launch.hpp"
#include "support/forwarding_transport.hpp"

using namespace launch;
using launch_test::TempDir;
using launch_test::slurp;
using std::chrono::milliseconds;

namespace {

// A store whose writes of item endings fail (as on a full disk) while
// `down` is set; everything else, heartbeats included, still works.
class FlakyEndings final : public launch_test::ForwardingTransport {
 public:
  using ForwardingTransport::ForwardingTransport;
  bool down = true;
  int refused = 0;  // ending calls refused while down

  QueueItem finish(const std::string& i, const std::string& a, int code) override {
    check();
    return t_->finish(i, a, code);
  }
  FinishAndClaim finish_and_claim(const std::string& i, const std::string& a, int code,
                                  const std::vector<QueueRef>& q) override {
    check();
    return t_->finish_and_claim(i, a, code, q);
  }
  QueueItem fail(const std::string& i, const std::string& a, const ItemError& e,
                 std::optional<int> code) override {
    check();
    return t_->fail(i, a, e, code);
  }

 private:
  void check() {
    if (!down) return;
    ++refused;
    throw Error(Errc::io, "database or disk is full");
  }
};

struct Rig {
  TempDir home;
  TempDir work;
  std::shared_ptr<Transport> store = open_transport("memory://");
  std::shared_ptr<FlakyEndings> t = std::make_shared<FlakyEndings>(store);
  std::unique_ptr<Agent> agent;

  Rig(int lease_seconds = 30) {
    QueueDef q;
    q.entity = "team";
    q.name = "q";
    q.resource = "local-process";
    q.lease_seconds = lease_seconds;
    t->create_queue(q);
  }
  void start() {
    AgentConfig c;
    c.entity = "team";
    c.queues = {"q"};
    c.launch_home = home.path();
    c.gpus = 0;
    agent = std::make_unique<Agent>(c, t);
  }
  // A job that counts its own runs.
  std::string push(const std::string& exit = "0") {
    JobSpec s;
    s.author = "alice";
    s.entry_point = {"/bin/sh", "-c", "echo ran >> " + (work / "runs") + "; exit " + exit};
    return t->push(QueueRef{"team", "q"}, s);
  }
  int runs() { return static_cast<int>(launch_test::lines_of(slurp(work / "runs")).size()); }
  void step() { agent->step(milliseconds(50)); }
  QueueItem wait_end(const std::string& id) {
    launch_test::until([&] { return is_terminal(store->get(id).state); }, [&] { step(); });
    return store->get(id);
  }
  std::vector<std::string> journals() {
    std::vector<std::string> out;
    DIR* d = ::opendir((home / "agents").c_str());
    if (!d) return out;
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n.size() > 8 && n.compare(n.size() - 8, 8, ".reports") == 0) out.push_back(n);
    }
    ::closedir(d);
    return out;
  }
};

}  // namespace

TEST_CASE("agent: a finish the store cannot take is retried until it lands; the job runs once") {
  Rig r(2);  // a lease shorter than the outage: heartbeats must keep it
  r.start();
  std::string id = r.push();
  launch_test::until([&] { return r.t->refused >= 3; }, [&] { r.step(); });
  // The run is over, its report kept; the item is still held, not expired.
  CHECK(r.runs() == 1);
  r.store->expire_leases();
  QueueItem held = r.store->get(id);
  CHECK(held.state == ItemState::running);
  CHECK(held.agent_id == r.agent->id());
  CHECK(r.journals().size() == 1);
  r.t->down = false;
  QueueItem done = r.wait_end(id);
  CHECK(done.state == ItemState::finished);
  CHECK(done.exit_code == 0);
  CHECK(done.attempt == 1);
  CHECK(r.runs() == 1);
  CHECK(r.journals().empty());
}

TEST_CASE("agent: a failure report is kept like a finish, with its exit code and reason") {
  Rig r;
  r.start();
  std::string id = r.push("7");
  launch_test::until([&] { return r.t->refused >= 1; }, [&] { r.step(); });
  r.t->down = false;
  QueueItem done = r.wait_end(id);
  CHECK(done.state == ItemState::failed);
  CHECK(done.exit_code == 7);
  REQUIRE(done.error);
  CHECK(done.error->stage == ErrorStage::run);
  CHECK(done.error->message == "exited with code 7");
}

TEST_CASE("agent: kept reports outlive the agent; the next start delivers them") {
  Rig r;
  r.start();
  std::string first = r.push();
  std::string second = r.push("3");
  launch_test::until([&] { return r.t->refused >= 2; }, [&] { r.step(); });
  CHECK(r.runs() == 2);
  // The agent stops with both reports undelivered; it does not wait forever.
  r.agent->stop(StopMode::drain);
  launch_test::until([&] { return !r.agent->step(milliseconds(50)); }, [] {});
  r.agent.reset();
  REQUIRE(r.journals().size() == 1);
  CHECK(r.store->get(first).state == ItemState::running);

  r.t->down = false;
  r.start();  // the same agent id: it finds its journal
  QueueItem a = r.wait_end(first);
  QueueItem b = r.wait_end(second);
  // The true endings, not "agent restarted; run lost", and no second run.
  CHECK(a.state == ItemState::finished);
  CHECK(b.state == ItemState::failed);
  CHECK(b.exit_code == 3);
  REQUIRE(b.error);
  CHECK(b.error->message == "exited with code 3");
  CHECK(r.runs() == 2);
  CHECK(r.journals().empty());
}

TEST_CASE("agent: a kept report the store refuses for good is dropped, the next goes on") {
  Rig r;
  r.start();
  std::string first = r.push();
  std::string second = r.push();
  launch_test::until([&] { return r.t->refused >= 2; }, [&] { r.step(); });
  // Meanwhile the first item's lease was taken from the agent.
  r.store->cancel(first);
  r.store->confirm_stopped(first, r.agent->id());
  r.t->down = false;
  QueueItem b = r.wait_end(second);
  CHECK(b.state == ItemState::finished);
  CHECK(r.store->get(first).state == ItemState::stopped);
  launch_test::until([&] { return r.journals().empty(); }, [&] { r.step(); });
}

TEST_CASE("report journal: reports come back in order; a damaged journal is set aside") {
  TempDir d;
  std::string path = d / "agent.reports";
  {
    ReportJournal j(path, nullptr);
    PendingReport f;
    f.item_id = "1";
    f.exit_code = 0;
    CHECK_FALSE(j.push(f));
    PendingReport g;
    g.kind = PendingReport::Kind::fail;
    g.item_id = "2";
    g.exit_code = 4;
    g.error = ItemError{ErrorStage::build, "no \"space\"\nleft"};
    CHECK_FALSE(j.push(g));
    PendingReport q;
    q.kind = PendingReport::Kind::requeue;
    q.item_id = "3";
    q.reason = RequeueReason::preempted;
    q.message = "preempted: spot";
    CHECK_FALSE(j.push(q));
  }
  std::string warning;
  ReportJournal j(path, &warning);
  CHECK(warning.empty());
  REQUIRE(j.size() == 3);
  CHECK(j.reports()[0].kind == PendingReport::Kind::finish);
  CHECK(j.reports()[0].exit_code == 0);
  CHECK(j.reports()[1].kind == PendingReport::Kind::fail);
  CHECK(j.reports()[1].error.stage == ErrorStage::build);
  CHECK(j.reports()[1].error.message == "no \"space\"\nleft");
  CHECK(j.reports()[1].exit_code == 4);
  CHECK(j.reports()[2].reason == RequeueReason::preempted);
  CHECK(j.reports()[2].message == "preempted: spot");
  CHECK(j.holds("2"));
  CHECK_FALSE(j.holds("4"));
  CHECK_FALSE(j.pop());
  CHECK_FALSE(j.pop());
  CHECK_FALSE(j.pop());
  CHECK_FALSE(launch_test::exists(path));

  // A torn or edited file: the lines before the damage are kept, the file
  // is kept for a person to read, and nothing throws.
  launch_test::write_file(path, "{\"kind\":\"finish\",\"item_id\":\"9\",\"exit_code\":0}\n"
                                "{\"kind\":\"finish\",\"item_");
  ReportJournal k(path, &warning);
  CHECK(warning.find("agent.reports.bad") != std::string::npos);
  REQUIRE(k.size() == 1);
  CHECK(k.reports()[0].item_id == "9");
  CHECK(launch_test::exists(path + ".bad"));
  launch_test::write_file(path, "{\"kind\":\"explode\",\"item_id\":\"9\"}\n");
  ReportJournal m(path, &warning);
  CHECK(m.empty());
  CHECK(warning.find("explode") != std::string::npos);
}
