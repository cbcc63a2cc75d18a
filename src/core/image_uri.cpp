#include "core/image_uri.hpp"

#include <cctype>
#include <vector>

#include <fmt/format.h>

#include "launch/error.hpp"

namespace launch {

namespace {

bool lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool all_digits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::size_t i = 0;
  while (true) {
    std::size_t j = s.find(sep, i);
    parts.push_back(s.substr(i, j == std::string::npos ? std::string::npos : j - i));
    if (j == std::string::npos) break;
    i = j + 1;
  }
  return parts;
}

// [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*
bool valid_component(const std::string& c) {
  if (c.empty() || !lower_alnum(c.front()) || !lower_alnum(c.back())) return false;
  std::size_t i = 0;
  while (i < c.size()) {
    if (lower_alnum(c[i])) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < c.size() && !lower_alnum(c[j])) ++j;
    std::string sep = c.substr(i, j - i);
    bool dashes = sep.find_first_not_of('-') == std::string::npos;
    if (sep != "." && sep != "_" && sep != "__" && !dashes) return false;
    i = j;
  }
  return true;
}

// host[:port] or [v6]:port
bool valid_host(const std::string& h) {
  if (h.empty()) return false;
  std::string host = h;
  std::string port;
  if (host.front() == '[') {
    auto close = host.find(']');
    if (close == std::string::npos || close == 1) return false;
    for (char c : host.substr(1, close - 1)) {
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':') return false;
    }
    std::string rest = host.substr(close + 1);
    if (rest.empty()) return true;
    if (rest[0] != ':') return false;
    return all_digits(rest.substr(1));
  }
  auto colon = host.find(':');
  if (colon != std::string::npos) {
    port = host.substr(colon + 1);
    host = host.substr(0, colon);
    if (!all_digits(port)) return false;
  }
  for (const auto& label : split(host, '.')) {
    if (label.empty() || label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    }
  }
  return true;
}

bool valid_tag(const std::string& t) {
  if (t.empty() || t.size() > 128 || t[0] == '.' || t[0] == '-') return false;
  for (char c : t) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') {
      return false;
    }
  }
  return true;
}

bool valid_digest(const std::string& d) {
  auto colon = d.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == d.size()) return false;
  for (char c : d.substr(0, colon)) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '.' && c != '_' &&
        c != '-') {
      return false;
    }
  }
  for (char c : d.substr(colon + 1)) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

[[noreturn]] void refuse(const std::string& what, const std::string& text,
                         const std::string& why) {
  throw Error(Errc::invalid, fmt::format("{} \"{}\": {}", what, text, why));
}

// Splits and checks; `hub` says whether a reference without a registry is
// Docker Hub's (with "library/" for one-part names).
ImageUri parse(const std::string& text, const std::string& what, bool hub) {
  if (text.empty()) refuse(what, text, "is empty");
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c)) || std::iscntrl(static_cast<unsigned char>(c))) {
      refuse(what, text, "is no image URI (it holds a space or a control character)");
    }
  }
  auto scheme = text.find("://");
  if (scheme != std::string::npos) {
    refuse(what, text,
           fmt::format("is no image URI (\"{}://\" is not a registry; expected "
                       "[REGISTRY/]REPOSITORY, e.g. 127.0.0.1:5000/jobs)",
                       text.substr(0, scheme)));
  }
  ImageUri u;
  std::string rest = text;
  auto at = rest.find('@');
  if (at != std::string::npos) {
    u.digest = rest.substr(at + 1);
    rest = rest.substr(0, at);
    if (!valid_digest(u.digest)) {
      refuse(what, text, fmt::format("the digest \"{}\" is not ALGORITHM:HEX", u.digest));
    }
  }
  auto slash = rest.find('/');
  if (slash != std::string::npos) {
    std::string first = rest.substr(0, slash);
    if (first.find('.') != std::string::npos || first.find(':') != std::string::npos ||
        first == "localhost") {
      if (!valid_host(first)) {
        refuse(what, text, fmt::format("\"{}\" is not a registry host[:port]", first));
      }
      u.registry = first;
      rest = rest.substr(slash + 1);
    }
  }
  auto colon = rest.rfind(':');
  if (colon != std::string::npos) {
    u.tag = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
    if (!valid_tag(u.tag)) {
      refuse(what, text,
             fmt::format("the tag \"{}\" is not a tag (up to 128 of A-Z a-z 0-9 _ . -)", u.tag));
    }
  }
  if (rest.empty()) refuse(what, text, "names no repository");
  for (const auto& c : split(rest, '/')) {
    if (!valid_component(c)) {
      refuse(what, text,
             fmt::format("\"{}\" is not a repository name component (lowercase letters and "
                         "digits, separated by . _ __ or -)",
                         c));
    }
  }
  if (u.registry.empty() && hub) {
    u.registry = "docker.io";
    if (rest.find('/') == std::string::npos) rest = "library/" + rest;
  }
  u.repository = rest;
  if (!u.registry.empty()) u.kind = registry_kind(u.registry, &u);
  if (u.kind == RegistryKind::gar) {
    auto parts = split(u.repository, '/');
    u.project = parts[0];
  }
  return u;
}

}  // namespace

const char* to_string(RegistryKind kind) {
  switch (kind) {
    case RegistryKind::ecr:
      return "ecr";
    case RegistryKind::gar:
      return "gar";
    case RegistryKind::acr:
      return "acr";
    case RegistryKind::generic:
      break;
  }
  return "generic";
}

std::string ImageUri::str() const {
  std::string out = registry.empty() ? repository : registry + "/" + repository;
  if (!tag.empty()) out += ":" + tag;
  if (!digest.empty()) out += "@" + digest;
  return out;
}

RegistryKind registry_kind(const std::string& host, ImageUri* out) {
  std::string h = lower(host.substr(0, host.find('/')));
  auto parts = split(h, '.');
  // <account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]
  bool cn = parts.size() == 7 && parts[6] == "cn";
  if ((parts.size() == 6 || cn) && parts[0].size() == 12 && all_digits(parts[0]) &&
      parts[1] == "dkr" && (parts[2] == "ecr" || parts[2] == "ecr-fips") && !parts[3].empty() &&
      parts[4] == "amazonaws" && parts[5] == "com") {
    if (out) {
      out->account = parts[0];
      out->region = parts[3];
    }
    return RegistryKind::ecr;
  }
  // <region>-docker.pkg.dev
  const std::string gar = "-docker.pkg.dev";
  if (ends_with(h, gar) && h.size() > gar.size() && h.find('.') == h.size() - gar.size() + 7) {
    if (out) out->region = h.substr(0, h.size() - gar.size());
    return RegistryKind::gar;
  }
  // <name>.azurecr.io
  const std::string acr = ".azurecr.io";
  if (ends_with(h, acr) && h.size() > acr.size() &&
      h.find('.') == h.size() - acr.size()) {
    if (out) out->name = h.substr(0, h.size() - acr.size());
    return RegistryKind::acr;
  }
  return RegistryKind::generic;
}

ImageUri parse_image_uri(const std::string& text, const std::string& what) {
  return parse(text, what, true);
}

ImageUri parse_repository_uri(const std::string& text, const std::string& what) {
  std::string t = text;
  if (t.compare(0, 8, "https://") == 0) t = t.substr(8);
  while (!t.empty() && t.back() == '/') t.pop_back();
  if (t.empty()) refuse(what, text, "is empty");
  if (t.find('/') == std::string::npos &&
      (t.find('.') != std::string::npos || t.find(':') != std::string::npos ||
       t == "localhost")) {
    refuse(what, text,
           fmt::format("names a registry but no repository in it (expected {}/REPOSITORY)", t));
  }
  ImageUri u = parse(t, what, false);
  if (!u.tag.empty() || !u.digest.empty()) {
    refuse(what, text,
           fmt::format("has the {} \"{}\"; give the repository without it (each built image is "
                       "tagged with the hash of its source)",
                       u.tag.empty() ? "digest" : "tag", u.tag.empty() ? u.digest : u.tag));
  }
  if (u.registry.empty()) return u;
  auto parts = split(u.repository, '/');
  switch (u.kind) {
    case RegistryKind::gar:
      if (parts.size() < 3) {
        refuse(what, text,
               "names no image: a Google Artifact Registry URI is "
               "<region>-docker.pkg.dev/<project>/<repository>/<image>");
      }
      break;
    case RegistryKind::ecr:
    case RegistryKind::acr:
    case RegistryKind::generic:
      break;
  }
  return u;
}

}  // namespace launch
