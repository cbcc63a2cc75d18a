// The log sink: the host's function behind launch::set_log_sink.
#include "capi.hpp"
#include "launch/log.hpp"

extern "C" {

int launch_log_set_sink(launch_log_fn sink, void* user) {
  return launch::capi::guard([&] {
    if (!sink) {
      launch::set_log_sink(nullptr);
    } else {
      launch::set_log_sink([sink, user](launch::LogLevel level, const std::string& line) {
        sink(static_cast<int>(level), line.c_str(), user);
      });
    }
    return LAUNCH_OK;
  });
}

int launch_log_set_level(int level) {
  return launch::capi::guard([&] {
    if (level < LAUNCH_LOG_ERROR || level > LAUNCH_LOG_TRACE) {
      throw launch::Error(launch::Errc::invalid,
                          "launch_log_set_level: level " + std::to_string(level) +
                              " is not one of LAUNCH_LOG_ERROR (0) .. LAUNCH_LOG_TRACE (4)");
    }
    launch::set_log_level(static_cast<launch::LogLevel>(level));
    return LAUNCH_OK;
  });
}

}  // extern "C"
