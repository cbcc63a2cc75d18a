// Internal: the SQLite transport's statements whose query plans matter,
// named so that its tests EXPLAIN the very text the transport runs.
#ifndef LAUNCH_SRC_TRANSPORT_SQLITE_SQL_HPP
#define LAUNCH_SRC_TRANSPORT_SQLITE_SQL_HPP

namespace launch {
namespace sqlite_sql {

// The head of one queue: straight off the items_claim index, so a claim
// costs the same with a thousand pending items or a million.
inline constexpr const char kQueueHead[] =
    "SELECT id, priority FROM items WHERE queue = ? AND state = 'pending' "
    "ORDER BY priority, id LIMIT 1";

// Items whose lease ran out before ?, off the items_lease index.
inline constexpr const char kExpiredItems[] =
    "SELECT id FROM items WHERE state IN ('claimed', 'running', 'stopping') "
    "AND lease_expires_at < ? ORDER BY lease_expires_at";

}  // namespace sqlite_sql
}  // namespace launch

#endif
