// How long the agent spends turning a queue's config and a job's overrides
// into a runner's config: template values, deep merge, macros, over a
// Kubernetes Job of typical size. Prints figures; asserts nothing.
//
//   build/bench/bench_template [iterations]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include <launch/queue.hpp>
#include <launch/template.hpp>

namespace {

const char* const kQueue = R"(
name: k8s
entity: bench
resource: kubernetes
config:
  apiVersion: batch/v1
  kind: Job
  metadata: {name: "train-${run_id}", labels: {team: ml, author: "${author}"}}
  spec:
    backoffLimit: 0
    template:
      spec:
        restartPolicy: Never
        nodeSelector: {gpu: "{{gpu_type}}"}
        containers:
          - name: main
            image: "${image_uri}"
            args: ["--lr", "{{lr}}", "--epochs={{epochs}}"]
            env:
              - {name: RUN, value: "${run_id}"}
              - {name: PROJECT, value: "${project_name}"}
            resources:
              limits: {nvidia.com/gpu: "{{gpus}}", memory: "{{memory}}"}
              requests: {cpu: "4", memory: "{{memory}}"}
template_variables:
  gpus: {type: integer, minimum: 1, maximum: 8, default: 1}
  lr: {type: number, minimum: 0, maximum: 1, default: 0.001}
  epochs: {type: integer, default: 10}
  gpu_type: {type: string, enum: [a100, h100, l4], default: a100}
  memory: {type: string, default: 32Gi}
)";

// A job's resource_args: objects merge key by key into the config above.
const char* const kOverrides =
    R"({"metadata":{"labels":{"priority":"high"}},"spec":{"activeDeadlineSeconds":86400,)"
    R"("template":{"spec":{"nodeSelector":{"zone":"eu-1"},"tolerations":[{"key":"gpu",)"
    R"("operator":"Exists"}]}}}})";

}  // namespace

int main(int argc, char** argv) {
  int iterations = argc > 1 ? std::atoi(argv[1]) : 20000;
  launch::QueueDef queue = launch::parse_queue(kQueue);
  std::map<std::string, std::string> values{{"gpus", "4"}, {"lr", "0.0003"},
                                            {"gpu_type", "h100"}};
  std::map<std::string, std::string> macros{{"run_id", "abc123xy"},
                                            {"image_uri", "registry:5000/train:9f1c"},
                                            {"author", "alice"},
                                            {"project_name", "vision"}};
  auto nothing = [](const std::string&, std::string*) { return false; };

  std::size_t bytes = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < iterations; ++i) {
    std::string config = launch::fill_template(queue, values);
    config = launch::deep_merge(config, kOverrides);
    config = launch::expand_macros(config, macros, nothing);
    bytes += config.size();
  }
  double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
                  .count();
  std::printf("resolve (fill + merge + macros), %zu-byte Kubernetes Job: %d runs, "
              "%.1f us per run\n",
              bytes / static_cast<std::size_t>(iterations > 0 ? iterations : 1), iterations,
              us / (iterations > 0 ? iterations : 1));

  t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < iterations; ++i) launch::validate_template_values(queue, values);
  us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  std::printf("validate_template_values, 5 variables: %.2f us per push\n",
              us / (iterations > 0 ? iterations : 1));

  t0 = std::chrono::steady_clock::now();
  int parses = iterations / 10 > 0 ? iterations / 10 : 1;
  for (int i = 0; i < parses; ++i) launch::parse_queue(kQueue);
  us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  std::printf("parse_queue (YAML, the queue above): %.1f us per file\n", us / parses);
  return 0;
}
