// Internal: the reports an agent could not deliver — an item's ending that
// the store did not take (unreachable, disk full) — kept in order until they
// land, in memory and in a file beside the agent's lock, so that neither a
// failed write nor an agent restart drops a finish and lets the lease run
// out into a second run of the job.
#ifndef LAUNCH_SRC_AGENT_REPORT_JOURNAL_HPP
#define LAUNCH_SRC_AGENT_REPORT_JOURNAL_HPP

#include <deque>
#include <optional>
#include <string>

#include "launch/error.hpp"
#include "launch/job.hpp"
#include "launch/transport.hpp"

namespace launch {

// One item ending, as the agent meant to report it.
struct PendingReport {
  enum class Kind { finish, fail, confirm_stopped, requeue };
  Kind kind = Kind::finish;
  std::string item_id;
  std::optional<int> exit_code;              // finish (always set), fail
  ItemError error;                           // fail
  RequeueReason reason = RequeueReason::released;  // requeue
  std::string message;                       // the event's message, if any

  // Makes the report's transport call.
  QueueItem deliver(Transport& t, const std::string& agent_id) const;
};

// Whether a report refused with `code` may land later: the store or the
// disk under it failed, not the report itself (a lost lease, an item gone).
bool report_may_heal(Errc code);

class ReportJournal {
 public:
  // Reads what an earlier run of this agent left in `path` ("" keeps the
  // journal in memory only). An unreadable journal is set aside (renamed
  // with ".bad") and reported through `warning`, never fatal.
  ReportJournal(std::string path, std::string* warning);

  bool empty() const { return reports_.empty(); }
  std::size_t size() const { return reports_.size(); }
  const std::deque<PendingReport>& reports() const { return reports_; }
  bool holds(const std::string& item_id) const;

  // Appends, then saves. A save that fails (the disk under the journal is
  // full too) keeps the report in memory and says why; nullopt: saved.
  std::optional<std::string> push(PendingReport r);
  // Drops the oldest, then saves (same contract as push).
  std::optional<std::string> pop();

 private:
  std::optional<std::string> save();
  std::string path_;
  std::deque<PendingReport> reports_;
};

}  // namespace launch

#endif
