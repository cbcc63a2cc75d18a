#include "agent/gpu_pool.hpp"

#include <chrono>
#include <string>

#include "launch/error.hpp"
#include "util/process.hpp"

namespace launch {

int GpuPool::free_count() const {
  int n = 0;
  for (bool u : used_) n += u ? 0 : 1;
  return n;
}

std::optional<std::vector<int>> GpuPool::take(int n) {
  if (n > free_count()) return std::nullopt;
  std::vector<int> out;
  for (std::size_t i = 0; i < used_.size() && static_cast<int>(out.size()) < n; ++i) {
    if (!used_[i]) {
      used_[i] = true;
      out.push_back(static_cast<int>(i));
    }
  }
  return out;
}

void GpuPool::give_back(const std::vector<int>& devices) {
  for (int d : devices) {
    if (d >= 0 && static_cast<std::size_t>(d) < used_.size()) used_[static_cast<std::size_t>(d)] = false;
  }
}

int detect_gpus() {
  util::ProcessOptions options;
  options.stderr_mode = util::StderrMode::discard;
  options.timeout = std::chrono::seconds(5);
  util::ProcessResult r;
  try {
    r = util::run_process({"nvidia-smi", "-L"}, options);
  } catch (const Error&) {
    return 0;  // no nvidia-smi: no GPUs
  }
  const std::string& out = r.out;
  int count = 0;
  std::size_t pos = 0;
  while (pos < out.size()) {
    std::size_t eol = out.find('\n', pos);
    if (eol == std::string::npos) eol = out.size();
    if (out.compare(pos, 4, "GPU ") == 0) ++count;
    pos = eol + 1;
  }
  return count;
}

}  // namespace launch
