// Internal: the small bodies of the launch server's API that are not a
// public type of their own — what an agent sends with a transition, a
// claim's answer, a refusal — written and read here only, by the Service
// (src/api/service.cpp) and by its client, the http(s):// transport
// (src/transport/http.cpp), so the two cannot drift apart.
#ifndef LAUNCH_SRC_API_WIRE_HPP
#define LAUNCH_SRC_API_WIRE_HPP

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "launch/error.hpp"
#include "launch/job.hpp"
#include "launch/transport.hpp"

namespace launch {
namespace api {
namespace wire {

// {"error": {"code", "message", "field"}}; `field` is field_of(message),
// null for none.
std::string error_body(Errc code, const std::string& message);
// The field a refusal's message is about, for a form to show it beside:
// `field "x"` names it; else a template variable ("template_variables.NAME"
// or ".NAME.KEY"), the queue's name, entity, config or resource; "" when
// the message names none.
std::string field_of(const std::string& message);
// The same with a code outside Errc: "unauthenticated" (401), "forbidden"
// (403).
std::string error_body_named(const std::string& code, const std::string& message);
// The code's name on the wire: invalid, not_found, exists, state, io,
// unsupported, timeout, internal, user.
const char* errc_name(Errc code);
// The Error an answer `status` with `body` stands for: the code and
// message of an error body, else the status's code and the body's text.
Error error_from_body(long status, const std::string& body);

// What an agent sends with a call about an item (POST /items/ID/VERB,
// /claims, /heartbeats): the fields `verb` needs, each required then.
struct AgentCall {
  std::string agent_id;
  std::string run_id;                  // start
  std::optional<int> exit_code;        // finish (required), fail (optional)
  ItemError error;                     // fail
  RequeueReason reason = RequeueReason::released;  // requeue
  std::vector<QueueRef> queues;        // claim, finish-and-claim
  std::vector<std::string> items;      // heartbeat
};
AgentCall read_agent_call(const std::string& body, const std::string& verb);
std::string agent_call_body(const AgentCall& call, const std::string& verb);

std::string read_warning(const std::string& body);
std::string warning_body(const std::string& message);

// {"item": QueueItem or null}
std::string claim_body(const std::optional<QueueItem>& item);
std::optional<QueueItem> claim_from_body(const std::string& body);
// {"finished": QueueItem, "next": QueueItem or null}
std::string finish_and_claim_body(const FinishAndClaim& fc);
FinishAndClaim finish_and_claim_from_body(const std::string& body);
// {"deleted": [ids]}
std::vector<std::string> deleted_from_body(const std::string& body);
// {"moved": n}
int moved_from_body(const std::string& body);

// The elements of a JSON array, each as its own JSON text (a list of
// queues, items or agents, each read then with its type's reader).
std::vector<std::string> array_elements(const std::string& body, const std::string& what);

// A non-negative decimal count (a query's limit), refused naming `what`.
std::uint64_t parse_count(const std::string& text, const std::string& what);

const char* to_string(RequeueReason why);
RequeueReason parse_requeue_reason(const std::string& text);

}  // namespace wire
}  // namespace api
}  // namespace launch

#endif
