// Internal: every limit on input, in one place. Input past a limit is
// refused with an error that names the limit, never truncated, and never
// allowed to crash a process or grow its memory without bound.
#ifndef LAUNCH_SRC_UTIL_LIMITS_HPP
#define LAUNCH_SRC_UTIL_LIMITS_HPP

#include <cstddef>

namespace launch {
namespace limits {

// How deep JSON and YAML documents may nest (objects and arrays). Deeper
// documents are refused at parse, so nothing recursive ever sees one.
constexpr int kMaxNesting = 64;

// How large a YAML document may grow once its aliases are expanded (the
// "billion laughs" of a few hundred bytes that would expand to gigabytes).
constexpr std::size_t kMaxYamlExpandedBytes = 1u << 20;

// The latest time an answer may name (an expiry, in seconds since the
// epoch): 2200-01-01. A time point holds nanoseconds in 64 bits, which end
// in 2262; a time past this is refused, never converted (which would be
// undefined).
constexpr long long kMaxEpochSeconds = 7258118400LL;

// How long a name (queue, entity) may be, in characters.
constexpr std::size_t kMaxNameChars = 64;
// How long a job's name (free text: any letters, no controls) may be.
constexpr std::size_t kMaxJobNameChars = 128;

// SageMaker's own limits on a training job (CreateTrainingJob in the
// SageMaker API reference), checked before the job is sent so the error
// names the variable or argument.
constexpr std::size_t kSageMakerMaxEnvironment = 48;
constexpr std::size_t kSageMakerMaxEnvironmentKey = 512;
constexpr std::size_t kSageMakerMaxEnvironmentValue = 512;
constexpr std::size_t kSageMakerMaxEntrypoint = 10;
constexpr std::size_t kSageMakerMaxArguments = 100;
constexpr std::size_t kSageMakerMaxArgument = 256;
constexpr std::size_t kSageMakerMaxJobName = 63;
constexpr std::size_t kSageMakerMaxImage = 255;
// How much of a job's CloudWatch log one poll copies at most, so a job
// that floods its log cannot hold the agent's worker.
constexpr int kCloudWatchMaxPagesPerPoll = 50;

// The longest start timeout a kubernetes queue may set
// (startTimeoutSeconds): a week.
constexpr int kKubeMaxStartTimeoutSeconds = 7 * 24 * 3600;
// Google Cloud's limits on a label (keys and values: at most 63
// characters, lowercase letters, digits, '-' and '_') and on a Vertex
// CustomJob's display_name (128 UTF-8 characters).
constexpr std::size_t kGcpMaxLabel = 63;
constexpr std::size_t kVertexMaxDisplayName = 128;
// How many pages of a job's Cloud Logging entries one poll copies at most
// (entries:list pages of kCloudLoggingPageSize).
constexpr int kCloudLoggingMaxPagesPerPoll = 20;
constexpr int kCloudLoggingPageSize = 1000;
// Cloud Logging shows an entry seconds after it is written: once a Vertex
// job has ended, its log is read every kVertexLogDrainPollMs until no new
// line came for kVertexLogQuietMs (at most kVertexLogDrainMaxMs), then the
// run ends.
constexpr long kVertexLogDrainPollMs = 1000;
constexpr long kVertexLogQuietMs = 3000;
constexpr long kVertexLogDrainMaxMs = 30000;

}  // namespace limits
}  // namespace launch

#endif
