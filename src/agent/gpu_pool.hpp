// Internal: the agent's GPUs, handed out to local-process runs so that no
// device ever serves two jobs at once.
#ifndef LAUNCH_SRC_AGENT_GPU_POOL_HPP
#define LAUNCH_SRC_AGENT_GPU_POOL_HPP

#include <optional>
#include <vector>

namespace launch {

class GpuPool {
 public:
  explicit GpuPool(int size) : used_(static_cast<std::size_t>(size > 0 ? size : 0), false) {}

  int size() const { return static_cast<int>(used_.size()); }
  int free_count() const;
  // The lowest `n` free devices, now taken; nullopt when fewer are free.
  std::optional<std::vector<int>> take(int n);
  void give_back(const std::vector<int>& devices);

 private:
  std::vector<bool> used_;
};

// The number of GPUs `nvidia-smi -L` lists, 0 when it is not installed or
// fails. Runs it directly (no shell), with a deadline of a few seconds.
int detect_gpus();

}  // namespace launch

#endif
