// launch — who may do what on a launch server: users, teams, service
// accounts and their API keys, kept as records in the server's store
// (Transport::*_record), so a server keeps no state of its own.
//
// An entity owns queues: a user (a personal queue, private to its owner)
// or a team (shared by its members). Users and teams share one namespace.
//
//   user              a person; `admin` users administer the server (they
//                     create users and may act on every entity)
//   team              members with role admin or member
//   service account   belongs to one team; what agents run as
//   API key           "lk_" + 8 characters of prefix + "_" + 43 of secret
//                     (256 random bits); shown once when made, stored only
//                     as its SHA-256, listed by prefix, revocable, may expire
//
// The rules, each answered by Accounts::decide() below:
//   see an entity's queues, items and agents: the user it is, a member of
//     the team, the team's service accounts, a server admin
//   push to / cancel on a queue: the same
//   create, change or delete a queue: its owner (a personal queue), an
//     admin of the team (a team queue), a server admin
//   claim and report as an agent: the same as see, for queues of that
//     entity only
// What a caller may not see is not found (404); what it may see but not do
// is refused (403).
//
// Thread safety: an Accounts may be used from several threads at once.
#ifndef LAUNCH_ACCOUNTS_HPP
#define LAUNCH_ACCOUNTS_HPP

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "launch/export.h"
#include "launch/transport.hpp"

namespace launch {

enum class TeamRole { member, admin };
LAUNCH_EXPORT const char* to_string(TeamRole r);
LAUNCH_EXPORT TeamRole parse_team_role(const std::string& text);

// Who a request comes from: the owner of the key it carries.
struct Principal {
  enum class Kind { user, service_account };
  Kind kind = Kind::user;
  std::string name;     // the user's name, or the service account's
  std::string team;     // a service account's team
  bool admin = false;   // a server admin (users only)
  std::string key_prefix;
  // What an item pushed with this key names as its author: the user, or
  // "NAME@TEAM" for a service account.
  std::string display() const { return kind == Kind::user ? name : name + "@" + team; }
};

struct UserRecord {
  std::string name;
  bool admin = false;
  std::int64_t created_at = 0;
};

struct Membership {
  std::string team;
  std::string user;
  TeamRole role = TeamRole::member;
};

struct ServiceAccount {
  std::string team;
  std::string name;
  std::int64_t created_at = 0;
};

struct ApiKeyInfo {
  std::string prefix;  // "lk_XXXXXXXX": how a key is named once made
  Principal::Kind owner_kind = Principal::Kind::user;
  std::string owner;  // a user's name, or a service account's
  std::string team;   // a service account's team
  std::string description;
  std::int64_t created_at = 0;
  std::int64_t expires_at = 0;  // ms since the epoch; 0: never
  bool revoked = false;
};

// A key just made: its text (shown once, never stored) and what is kept.
struct NewApiKey {
  std::string key;
  ApiKeyInfo info;
};

// What an entity is to a caller.
struct EntityAccess {
  std::string name;
  std::string kind;  // "user" or "team"
  std::string role;  // "owner", "admin" or "member"
};

enum class Action { see, push, manage, work };

class LAUNCH_EXPORT Accounts {
 public:
  // Over the records of `store` (which must keep records).
  explicit Accounts(std::shared_ptr<Transport> store);

  // True before the first user is made (launch-server init).
  bool empty();

  // Errc::exists when the name is a user or a team already; Errc::invalid
  // for a bad name (validate_name()).
  UserRecord create_user(const std::string& name, bool admin);
  std::optional<UserRecord> find_user(const std::string& name);
  std::vector<UserRecord> list_users();

  // A team with `first_admin` (a user) as its admin.
  void create_team(const std::string& name, const std::string& first_admin);
  bool team_exists(const std::string& name);
  std::vector<std::string> list_teams();
  void set_member(const std::string& team, const std::string& user, TeamRole role);
  // Errc::state when it would leave the team without an admin.
  void remove_member(const std::string& team, const std::string& user);
  std::vector<Membership> members(const std::string& team);
  std::optional<TeamRole> role_of(const std::string& team, const std::string& user);

  ServiceAccount create_service_account(const std::string& team, const std::string& name);
  std::vector<ServiceAccount> service_accounts(const std::string& team);

  // A key for a user (team empty) or a service account of `team`.
  // `expires_at` 0: never.
  NewApiKey create_key(Principal::Kind kind, const std::string& owner, const std::string& team,
                       const std::string& description, std::int64_t expires_at);
  // Keys owned by a user, or by a team's service accounts.
  std::vector<ApiKeyInfo> list_keys();
  std::optional<ApiKeyInfo> find_key(const std::string& prefix);
  void revoke_key(const std::string& prefix);  // Errc::not_found
  // The owner of `key`; empty for a key unknown, revoked or expired (the
  // caller answers all three alike).
  std::optional<Principal> authenticate(const std::string& key);

  // The entities `p` may see, with its role in each.
  std::vector<EntityAccess> entities_of(const Principal& p);
  // True when `entity` names a user or a team.
  bool entity_exists(const std::string& entity);
  // Whether `p` may do `action` on queues of `entity`: allowed, hidden
  // (it may not see them: answered as not found) or forbidden (it may see
  // them but not do this: answered 403).
  enum class Decision { allow, hidden, forbidden };
  Decision decide(const Principal& p, Action action, const std::string& entity);

 private:
  std::shared_ptr<Transport> store_;
};

}  // namespace launch

#endif
