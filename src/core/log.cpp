#include "launch/log.hpp"

#include <atomic>
#include <cstdio>
#include <mutex>

#include "util/enum_names.hpp"

namespace launch {
namespace {

std::mutex& sink_mutex() {
  static std::mutex mu;
  return mu;
}

LogSink& sink() {
  static LogSink* s = new LogSink;  // never destroyed: logging works until exit
  return *s;
}

std::atomic<int> g_level{static_cast<int>(LogLevel::info)};

}  // namespace

const char* to_string(LogLevel level) {
  static const util::EnumName<LogLevel> names[] = {{LogLevel::error, "error"},
                                                   {LogLevel::warn, "warn"},
                                                   {LogLevel::info, "info"},
                                                   {LogLevel::debug, "debug"},
                                                   {LogLevel::trace, "trace"}};
  return util::enum_name(names, level, "info");
}

void set_log_sink(LogSink s) {
  std::lock_guard<std::mutex> lock(sink_mutex());
  sink() = std::move(s);
}

void set_log_level(LogLevel level) { g_level = static_cast<int>(level); }

LogLevel log_level() { return static_cast<LogLevel>(g_level.load()); }

void log(LogLevel level, const std::string& line) {
  if (static_cast<int>(level) > g_level.load()) return;
  std::lock_guard<std::mutex> lock(sink_mutex());
  if (sink()) {
    sink()(level, line);
    return;
  }
  std::fprintf(stderr, "%s\n", line.c_str());
}

}  // namespace launch
