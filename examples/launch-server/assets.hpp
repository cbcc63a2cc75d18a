// The Launch App's files (app/), compiled into launch-server so it serves
// them with no network and no files beside it (embed_assets.cmake makes
// assets.cpp from app/ at build time).
#ifndef LAUNCH_EXAMPLES_SERVER_ASSETS_HPP
#define LAUNCH_EXAMPLES_SERVER_ASSETS_HPP

#include <string>

namespace launch_server {

struct Asset {
  const char* content_type;
  const unsigned char* data;
  std::size_t size;
};

// The file served at `path` ("/" is "/index.html"), or nullptr.
const Asset* find_asset(const std::string& path);

}  // namespace launch_server

#endif
