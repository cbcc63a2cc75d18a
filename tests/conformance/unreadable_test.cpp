// Items whose stored row cannot be read (a damaged file, a field of the
// wrong type, a value this version does not know): each backend with rows
// fails such an item with "unreadable item: <cause>" and lets the queue move
// on, and reads what a newer version added without complaint. The rows are
// damaged through the store's own client library (backends.cpp).
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "backends.hpp"
#include "launch/error.hpp"
#include "launch/transport.hpp"

using namespace launch;
using conformance::Fixture;
using conformance::make_job;
using conformance::make_queue;
using conformance::RowUpdate;
using conformance::sql_literal;

namespace {

const QueueItem& by_id(const std::vector<QueueItem>& items, const std::string& id) {
  for (const auto& it : items) {
    if (it.id == id) return it;
  }
  FAIL("item " << id << " not listed");
  return items.front();
}

void check_quarantined(const QueueItem& item, const std::string& cause) {
  INFO("item " << item.id);
  CHECK(item.state == ItemState::failed);
  REQUIRE(item.error);
  CHECK(item.error->stage == ErrorStage::agent);
  CHECK(item.error->message.rfind("unreadable item: ", 0) == 0);
  CHECK(item.error->message.find(cause) != std::string::npos);
  CHECK(item.ended_at > 0);
}

}  // namespace

TEST_CASE("conformance: an unreadable item fails with its cause and the queue moves on") {
  conformance::for_each_transport_with_rows([](Fixture& f, const RowUpdate& update_row) {
    Transport& t = *f.transport;
    t.create_queue(make_queue("damaged"));
    QueueRef q{"team", "damaged"};
    std::string first = t.push(q, make_job("first"));
    std::string cut = t.push(q, make_job("cut"));
    std::string typed = t.push(q, make_job("typed"));
    std::string flipped = t.push(q, make_job("flipped"));
    std::string unknown_state = t.push(q, make_job("unknown-state"));
    std::string bad_priority = t.push(q, make_job("bad-priority"));
    std::string last = t.push(q, make_job("last"));

    update_row(cut, "spec = '{\"name\":\"cut\",\"ima'");  // truncated JSON
    update_row(typed, "spec = '{\"name\":5}'");           // a field of the wrong type
    std::string spec = to_json(make_job("flipped"));
    spec[0] = static_cast<char>(spec[0] ^ 0x01);  // '{' -> 'z': one bit
    update_row(flipped, "spec = " + sql_literal(spec));
    update_row(unknown_state, "state = 'pendinq'");
    update_row(bad_priority, "priority = 9");

    // Another handle, which has read none of them yet, claims past them.
    auto agent = open_transport(f.uri);
    auto a = agent->claim({q}, "agent-1");
    REQUIRE(a);
    CHECK(a->id == first);
    auto b = agent->claim({q}, "agent-1");
    REQUIRE(b);
    CHECK(b->id == last);
    CHECK(b->spec.name == "last");
    CHECK_FALSE(agent->claim({q}, "agent-1"));

    // list no longer fails; each shows as failed, naming the cause.
    std::vector<QueueItem> items = t.list({q, std::nullopt, "", 0});
    REQUIRE(items.size() == 7);
    check_quarantined(by_id(items, cut), "job spec: invalid JSON");
    check_quarantined(by_id(items, typed), "\"name\"");
    check_quarantined(by_id(items, flipped), "job spec: invalid JSON");
    check_quarantined(by_id(items, unknown_state), "pendinq");
    check_quarantined(by_id(items, bad_priority), "priority 9");
    CHECK(by_id(items, first).state == ItemState::claimed);
    CHECK(by_id(items, last).state == ItemState::claimed);
    check_quarantined(t.get(typed), "\"name\"");

    // The failure is stored: filters by state see it, and it stays ended.
    std::vector<QueueItem> failed = t.list({q, ItemState::failed, "", 0});
    CHECK(failed.size() == 5);
    CHECK(t.expire_leases() == 0);
  });
}

TEST_CASE("conformance: a damaged pending item is not listed as pending") {
  conformance::for_each_transport_with_rows([](Fixture& f, const RowUpdate& update_row) {
    Transport& t = *f.transport;
    t.create_queue(make_queue("listed"));
    QueueRef q{"team", "listed"};
    std::string good = t.push(q, make_job("good"));
    std::string bad = t.push(q, make_job("bad"));
    update_row(bad, "spec = '[]'");
    // A handle that has read neither yet: the damaged one fails as it is
    // read, and so is not pending any more.
    auto reader = open_transport(f.uri);
    std::vector<QueueItem> pending = reader->list({q, ItemState::pending, "", 0});
    REQUIRE(pending.size() == 1);
    CHECK(pending[0].id == good);
    std::vector<QueueItem> failed = reader->list({q, ItemState::failed, "", 0});
    REQUIRE(failed.size() == 1);
    check_quarantined(failed[0], "job spec: expected a JSON object");
  });
}

TEST_CASE("conformance: a held item damaged mid-run fails; its agent learns it and is refused") {
  conformance::for_each_transport_with_rows([](Fixture& f, const RowUpdate& update_row) {
    Transport& t = *f.transport;
    t.create_queue(make_queue("mid-run"));
    QueueRef q{"team", "mid-run"};
    std::string id = t.push(q, make_job("x"));
    REQUIRE(t.claim({q}, "agent-1"));
    t.start(id, "agent-1", "");
    update_row(id, "spec = 'not json'");

    // The agent's next call through a handle that reads the row.
    auto agent = open_transport(f.uri);
    HeartbeatReply reply = agent->heartbeat("agent-1", {id});
    CHECK(reply.lost == std::vector<std::string>{id});
    check_quarantined(agent->get(id), "job spec: invalid JSON");
    try {
      agent->finish(id, "agent-1", 0);
      FAIL("finish of a failed item was taken");
    } catch (const Error& e) {
      CHECK(e.code() == Errc::state);
    }
    CHECK(agent->list({q, ItemState::failed, "", 0}).size() == 1);
  });
}

TEST_CASE("conformance: fields a newer version added to an item are read and ignored") {
  conformance::for_each_transport_with_rows([](Fixture& f, const RowUpdate& update_row) {
    Transport& t = *f.transport;
    t.create_queue(make_queue("newer"));
    QueueRef q{"team", "newer"};
    JobSpec job = make_job("from-the-future");
    job.env = {{"A", "1"}};
    std::string id = t.push(q, job);
    std::string spec = to_json(job);
    spec.insert(1, "\"checkpoint_policy\":{\"every\":[5,\"min\"]},\"gpu_kind\":\"h100\",");
    update_row(id, "spec = " + sql_literal(spec));

    auto agent = open_transport(f.uri);
    auto item = agent->claim({q}, "agent-1");
    REQUIRE(item);
    CHECK(item->id == id);
    CHECK(item->spec.name == "from-the-future");
    CHECK(item->spec.env == job.env);
    CHECK(item->spec.entry_point == job.entry_point);
    CHECK_FALSE(item->error);
  });
}
