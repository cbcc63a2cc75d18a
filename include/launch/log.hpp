// launch — the one logger. Everything the library says goes through one
// sink: stderr by default, or a function of the host's.
//
// Thread safety: the sink is called from whatever thread logs; set_log_sink
// may be called at any time.
#ifndef LAUNCH_LOG_HPP
#define LAUNCH_LOG_HPP

#include <functional>
#include <string>

#include "launch/export.h"

namespace launch {

enum class LogLevel { error = 0, warn = 1, info = 2, debug = 3, trace = 4 };
LAUNCH_EXPORT const char* to_string(LogLevel level);

using LogSink = std::function<void(LogLevel level, const std::string& line)>;

// Replaces the sink; an empty function restores the default (stderr).
LAUNCH_EXPORT void set_log_sink(LogSink sink);
// Lines above `level` are dropped before they reach the sink. Default: info.
LAUNCH_EXPORT void set_log_level(LogLevel level);
LAUNCH_EXPORT LogLevel log_level();
LAUNCH_EXPORT void log(LogLevel level, const std::string& line);

}  // namespace launch

#endif
