// Accounts over the store's records (launch/accounts.hpp). Kinds:
//   user     NAME          {"name", "admin", "created_at"}
//   team     NAME          {"name", "created_at"}
//   member   TEAM/USER     {"team", "user", "role"}
//   sa       TEAM/NAME     {"team", "name", "created_at"}
//   key      PREFIX        {"prefix", "hash", "owner_kind", "owner", "team",
//                           "description", "created_at", "expires_at", "revoked"}
// A key's secret is never stored: only its SHA-256, compared in constant
// time when a key is presented.
#include "launch/accounts.hpp"

#include <fmt/format.h>

#include "core/json_fields.hpp"
#include "launch/error.hpp"
#include "launch/job.hpp"
#include "launch/queue.hpp"
#include "util/base64.hpp"
#include "util/enum_names.hpp"
#include "util/json.hpp"
#include "util/random.hpp"
#include "util/sha256.hpp"

namespace launch {

namespace {

const util::EnumName<TeamRole> kRoles[] = {{TeamRole::member, "member"},
                                           {TeamRole::admin, "admin"}};

constexpr const char* kKeyPrefix = "lk_";
constexpr std::size_t kPrefixChars = 8;   // after "lk_"
constexpr std::size_t kSecretBytes = 32;  // 256 bits

std::string user_json(const UserRecord& u) {
  json::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  json::set(d, "name", json::str(u.name, a), a);
  json::set(d, "admin", json::Value(u.admin), a);
  json::set(d, "created_at", json::Value(static_cast<int64_t>(u.created_at)), a);
  return json::dump(d);
}

UserRecord user_from(const std::string& text) {
  json::Document d = json::parse_object(text, "user record");
  UserRecord u;
  u.name = json::get_string(d, "name", "user record");
  u.admin = json::get_bool(d, "admin", "user record");
  u.created_at = json::get_int(d, "created_at", "user record");
  return u;
}

std::string key_json(const ApiKeyInfo& k, const std::string& hash) {
  json::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  json::set(d, "prefix", json::str(k.prefix, a), a);
  json::set(d, "hash", json::str(hash, a), a);
  json::set(d, "owner_kind",
            json::str(k.owner_kind == Principal::Kind::user ? "user" : "service_account", a), a);
  json::set(d, "owner", json::str(k.owner, a), a);
  json::set(d, "team", json::str(k.team, a), a);
  json::set(d, "description", json::str(k.description, a), a);
  json::set(d, "created_at", json::Value(static_cast<int64_t>(k.created_at)), a);
  json::set(d, "expires_at", json::Value(static_cast<int64_t>(k.expires_at)), a);
  json::set(d, "revoked", json::Value(k.revoked), a);
  return json::dump(d);
}

ApiKeyInfo key_from(const std::string& text, std::string* hash) {
  const std::string ctx = "key record";
  json::Document d = json::parse_object(text, ctx);
  ApiKeyInfo k;
  k.prefix = json::get_string(d, "prefix", ctx);
  if (hash) *hash = json::get_string(d, "hash", ctx);
  k.owner_kind = json::get_string(d, "owner_kind", ctx) == "service_account"
                     ? Principal::Kind::service_account
                     : Principal::Kind::user;
  k.owner = json::get_string(d, "owner", ctx);
  k.team = json::get_string(d, "team", ctx);
  k.description = json::get_string(d, "description", ctx);
  k.created_at = json::get_int(d, "created_at", ctx);
  k.expires_at = json::get_int(d, "expires_at", ctx);
  k.revoked = json::get_bool(d, "revoked", ctx);
  return k;
}

std::string member_json(const Membership& m) {
  json::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  json::set(d, "team", json::str(m.team, a), a);
  json::set(d, "user", json::str(m.user, a), a);
  json::set(d, "role", json::str(to_string(m.role), a), a);
  return json::dump(d);
}

Membership member_from(const std::string& text) {
  const std::string ctx = "member record";
  json::Document d = json::parse_object(text, ctx);
  Membership m;
  m.team = json::get_string(d, "team", ctx);
  m.user = json::get_string(d, "user", ctx);
  m.role = json::get_enum(d, "role", ctx, "member", parse_team_role);
  return m;
}

ServiceAccount sa_from(const std::string& text) {
  const std::string ctx = "service account record";
  json::Document d = json::parse_object(text, ctx);
  ServiceAccount s;
  s.team = json::get_string(d, "team", ctx);
  s.name = json::get_string(d, "name", ctx);
  s.created_at = json::get_int(d, "created_at", ctx);
  return s;
}

bool same_bytes(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

// Prefix characters: lower-case letters and digits, so a prefix reads
// plainly in a list and in a URL.
std::string random_prefix() {
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string bytes = util::random_bytes(kPrefixChars);
  std::string out;
  for (unsigned char c : bytes) out += alphabet[c % 36];
  return out;
}

}  // namespace

const char* to_string(TeamRole r) { return util::enum_name(kRoles, r, "member"); }
TeamRole parse_team_role(const std::string& text) {
  return util::enum_parse(kRoles, text, "team role");
}

Accounts::Accounts(std::shared_ptr<Transport> store) : store_(std::move(store)) {
  if (!store_) throw Error(Errc::invalid, "accounts: no store");
  store_->list_records("user");  // Errc::unsupported now, not at the first request
}

bool Accounts::empty() { return store_->list_records("user").empty(); }

UserRecord Accounts::create_user(const std::string& name, bool admin) {
  validate_name("user name", name);
  if (team_exists(name)) {
    throw Error(Errc::exists, fmt::format("\"{}\" is a team already (users and teams share "
                                          "one namespace of entities)",
                                          name));
  }
  UserRecord u{name, admin, now_ms()};
  if (!store_->insert_record("user", name, user_json(u))) {
    throw Error(Errc::exists, fmt::format("user \"{}\" already exists", name));
  }
  return u;
}

std::optional<UserRecord> Accounts::find_user(const std::string& name) {
  auto r = store_->get_record("user", name);
  if (!r) return std::nullopt;
  return user_from(*r);
}

std::vector<UserRecord> Accounts::list_users() {
  std::vector<UserRecord> out;
  for (const auto& [k, v] : store_->list_records("user")) out.push_back(user_from(v));
  return out;
}

void Accounts::create_team(const std::string& name, const std::string& first_admin) {
  validate_name("team name", name);
  if (find_user(name)) {
    throw Error(Errc::exists, fmt::format("\"{}\" is a user already (users and teams share "
                                          "one namespace of entities)",
                                          name));
  }
  if (!find_user(first_admin)) {
    throw Error(Errc::not_found, fmt::format("no user \"{}\"", first_admin));
  }
  json::Document d(rapidjson::kObjectType);
  json::set(d, "name", json::str(name, d.GetAllocator()), d.GetAllocator());
  json::set(d, "created_at", json::Value(static_cast<int64_t>(now_ms())), d.GetAllocator());
  if (!store_->insert_record("team", name, json::dump(d))) {
    throw Error(Errc::exists, fmt::format("team \"{}\" already exists", name));
  }
  set_member(name, first_admin, TeamRole::admin);
}

bool Accounts::team_exists(const std::string& name) {
  return store_->get_record("team", name).has_value();
}

std::vector<std::string> Accounts::list_teams() {
  std::vector<std::string> out;
  for (const auto& [k, v] : store_->list_records("team")) out.push_back(k);
  return out;
}

void Accounts::set_member(const std::string& team, const std::string& user, TeamRole role) {
  if (!team_exists(team)) throw Error(Errc::not_found, fmt::format("no team \"{}\"", team));
  if (!find_user(user)) throw Error(Errc::not_found, fmt::format("no user \"{}\"", user));
  std::string key = team + "/" + user;
  std::string value = member_json(Membership{team, user, role});
  for (int attempt = 0; attempt < 16; ++attempt) {
    auto old = store_->get_record("member", key);
    if (!old) {
      if (store_->insert_record("member", key, value)) return;
    } else {
      if (member_from(*old).role == TeamRole::admin && role != TeamRole::admin) {
        int admins = 0;
        for (const auto& m : members(team)) admins += m.role == TeamRole::admin;
        if (admins <= 1) {
          throw Error(Errc::state, fmt::format("team \"{}\": \"{}\" is its last admin", team, user));
        }
      }
      if (store_->replace_record("member", key, *old, value)) return;
    }
  }
  throw Error(Errc::state, fmt::format("team \"{}\": membership of \"{}\" kept changing", team, user));
}

void Accounts::remove_member(const std::string& team, const std::string& user) {
  auto role = role_of(team, user);
  if (!role) {
    throw Error(Errc::not_found, fmt::format("team \"{}\" has no member \"{}\"", team, user));
  }
  if (*role == TeamRole::admin) {
    int admins = 0;
    for (const auto& m : members(team)) admins += m.role == TeamRole::admin;
    if (admins <= 1) {
      throw Error(Errc::state, fmt::format("team \"{}\": \"{}\" is its last admin", team, user));
    }
  }
  store_->delete_record("member", team + "/" + user);
}

std::vector<Membership> Accounts::members(const std::string& team) {
  std::vector<Membership> out;
  for (const auto& [k, v] : store_->list_records("member")) {
    if (k.compare(0, team.size() + 1, team + "/") == 0) out.push_back(member_from(v));
  }
  return out;
}

std::optional<TeamRole> Accounts::role_of(const std::string& team, const std::string& user) {
  auto r = store_->get_record("member", team + "/" + user);
  if (!r) return std::nullopt;
  return member_from(*r).role;
}

ServiceAccount Accounts::create_service_account(const std::string& team,
                                                const std::string& name) {
  validate_name("service account name", name);
  if (!team_exists(team)) throw Error(Errc::not_found, fmt::format("no team \"{}\"", team));
  ServiceAccount s{team, name, now_ms()};
  json::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  json::set(d, "team", json::str(team, a), a);
  json::set(d, "name", json::str(name, a), a);
  json::set(d, "created_at", json::Value(static_cast<int64_t>(s.created_at)), a);
  if (!store_->insert_record("sa", team + "/" + name, json::dump(d))) {
    throw Error(Errc::exists,
                fmt::format("team \"{}\" has a service account \"{}\" already", team, name));
  }
  return s;
}

std::vector<ServiceAccount> Accounts::service_accounts(const std::string& team) {
  std::vector<ServiceAccount> out;
  for (const auto& [k, v] : store_->list_records("sa")) {
    if (k.compare(0, team.size() + 1, team + "/") == 0) out.push_back(sa_from(v));
  }
  return out;
}

NewApiKey Accounts::create_key(Principal::Kind kind, const std::string& owner,
                               const std::string& team, const std::string& description,
                               std::int64_t expires_at) {
  if (kind == Principal::Kind::user) {
    if (!find_user(owner)) throw Error(Errc::not_found, fmt::format("no user \"{}\"", owner));
  } else if (!store_->get_record("sa", team + "/" + owner)) {
    throw Error(Errc::not_found,
                fmt::format("team \"{}\" has no service account \"{}\"", team, owner));
  }
  if (expires_at < 0) {
    throw Error(Errc::invalid, fmt::format("key expiry {} is before the epoch", expires_at));
  }
  if (description.size() > 256) {
    throw Error(Errc::invalid, "field \"description\": longer than 256 bytes");
  }
  NewApiKey out;
  out.info.owner_kind = kind;
  out.info.owner = owner;
  out.info.team = kind == Principal::Kind::user ? "" : team;
  out.info.description = description;
  out.info.created_at = now_ms();
  out.info.expires_at = expires_at;
  std::string secret = util::base64url_encode(util::random_bytes(kSecretBytes));
  for (int attempt = 0; attempt < 8; ++attempt) {
    out.info.prefix = kKeyPrefix + random_prefix();
    out.key = out.info.prefix + "_" + secret;
    if (store_->insert_record("key", out.info.prefix,
                              key_json(out.info, sha256_hex(out.key)))) {
      return out;
    }
  }
  throw Error(Errc::io, "could not find a free key prefix");
}

std::vector<ApiKeyInfo> Accounts::list_keys() {
  std::vector<ApiKeyInfo> out;
  for (const auto& [k, v] : store_->list_records("key")) out.push_back(key_from(v, nullptr));
  return out;
}

std::optional<ApiKeyInfo> Accounts::find_key(const std::string& prefix) {
  auto r = store_->get_record("key", prefix);
  if (!r) return std::nullopt;
  return key_from(*r, nullptr);
}

void Accounts::revoke_key(const std::string& prefix) {
  for (int attempt = 0; attempt < 16; ++attempt) {
    auto r = store_->get_record("key", prefix);
    if (!r) throw Error(Errc::not_found, fmt::format("no key \"{}\"", prefix));
    std::string hash;
    ApiKeyInfo k = key_from(*r, &hash);
    if (k.revoked) return;
    k.revoked = true;
    if (store_->replace_record("key", prefix, *r, key_json(k, hash))) return;
  }
  throw Error(Errc::state, fmt::format("key \"{}\" kept changing", prefix));
}

std::optional<Principal> Accounts::authenticate(const std::string& key) {
  // "lk_" + prefix + "_" + secret; anything else is no key of ours.
  const std::size_t prefix_len = std::string(kKeyPrefix).size() + kPrefixChars;
  if (key.size() <= prefix_len + 1 || key.size() > 128 || key.compare(0, 3, kKeyPrefix) != 0 ||
      key[prefix_len] != '_') {
    return std::nullopt;
  }
  auto r = store_->get_record("key", key.substr(0, prefix_len));
  if (!r) return std::nullopt;
  std::string hash;
  ApiKeyInfo k = key_from(*r, &hash);
  if (!same_bytes(hash, sha256_hex(key))) return std::nullopt;
  if (k.revoked || (k.expires_at != 0 && k.expires_at <= now_ms())) return std::nullopt;
  Principal p;
  p.kind = k.owner_kind;
  p.name = k.owner;
  p.team = k.team;
  p.key_prefix = k.prefix;
  if (p.kind == Principal::Kind::user) {
    auto u = find_user(p.name);
    if (!u) return std::nullopt;
    p.admin = u->admin;
  } else if (!store_->get_record("sa", p.team + "/" + p.name)) {
    return std::nullopt;
  }
  return p;
}

std::vector<EntityAccess> Accounts::entities_of(const Principal& p) {
  std::vector<EntityAccess> out;
  if (p.kind == Principal::Kind::service_account) {
    out.push_back({p.team, "team", "member"});
    return out;
  }
  out.push_back({p.name, "user", "owner"});
  for (const auto& [k, v] : store_->list_records("member")) {
    Membership m = member_from(v);
    if (m.user == p.name) out.push_back({m.team, "team", to_string(m.role)});
  }
  return out;
}

bool Accounts::entity_exists(const std::string& entity) {
  return find_user(entity).has_value() || team_exists(entity);
}

Accounts::Decision Accounts::decide(const Principal& p, Action action,
                                    const std::string& entity) {
  if (p.admin) return Decision::allow;
  if (p.kind == Principal::Kind::service_account) {
    if (entity != p.team) return Decision::hidden;
    return action == Action::manage ? Decision::forbidden : Decision::allow;
  }
  if (entity == p.name) return Decision::allow;
  auto role = role_of(entity, p.name);
  if (!role) return Decision::hidden;
  if (action == Action::manage && *role != TeamRole::admin) return Decision::forbidden;
  return Decision::allow;
}

}  // namespace launch
