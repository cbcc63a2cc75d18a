// The sagemaker runner: a job becomes a SageMaker training job
// (CreateTrainingJob from the queue config), followed with
// DescribeTrainingJob and its CloudWatch logs, stopped with
// StopTrainingJob. The job's name comes from the run id, so an agent that
// restarts finds it again by name. See docs/aws.md.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "aws/json_api.hpp"
#include "builtins/factories.hpp"
#include "http/aws_credentials.hpp"
#include "launch/error.hpp"
#include "launch/home.hpp"
#include "launch/log.hpp"
#include "util/fs.hpp"
#include "util/json.hpp"
#include "util/limits.hpp"

namespace launch {

namespace {

constexpr const char* kLogGroup = "/aws/sagemaker/TrainingJobs";
constexpr const char* kWhat = "sagemaker config";

// CreateTrainingJobRequest's members (botocore's sagemaker service model).
const std::set<std::string>& create_members() {
  static const std::set<std::string> m = {
      "TrainingJobName", "HyperParameters", "AlgorithmSpecification", "RoleArn",
      "InputDataConfig", "OutputDataConfig", "ResourceConfig", "VpcConfig",
      "StoppingCondition", "Tags", "EnableNetworkIsolation",
      "EnableInterContainerTrafficEncryption", "EnableManagedSpotTraining", "CheckpointConfig",
      "DebugHookConfig", "DebugRuleConfigurations", "TensorBoardOutputConfig",
      "ExperimentConfig", "ProfilerConfig", "ProfilerRuleConfigurations", "Environment",
      "RetryStrategy"};
  return m;
}

// W&B's snake_case ("resource_config", "volume_size_in_gb") as SageMaker's
// PascalCase ("ResourceConfig", "VolumeSizeInGB"); PascalCase unchanged.
std::string pascal_case(const std::string& key) {
  if (key.find('_') == std::string::npos && !key.empty() && std::isupper(static_cast<unsigned char>(key[0]))) {
    return key;
  }
  std::string out;
  std::size_t i = 0;
  while (i <= key.size()) {
    std::size_t j = key.find('_', i);
    if (j == std::string::npos) j = key.size();
    std::string part = key.substr(i, j - i);
    if (part == "gb") {
      part = "GB";
    } else if (!part.empty()) {
      part[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(part[0])));
    }
    out += part;
    i = j + 1;
  }
  return out;
}

// Every object key converted, but for the maps whose keys are the user's
// (Environment, HyperParameters).
void convert_keys(json::Value& v, json::Allocator& a) {
  if (v.IsArray()) {
    for (auto& e : v.GetArray()) convert_keys(e, a);
    return;
  }
  if (!v.IsObject()) return;
  json::Value out(rapidjson::kObjectType);
  for (auto& m : v.GetObject()) {
    std::string k = pascal_case(m.name.GetString());
    if (k != "Environment" && k != "HyperParameters") convert_keys(m.value, a);
    if (out.HasMember(k.c_str())) {
      throw Error(Errc::invalid, fmt::format("{}: {:?} is given twice (as {:?} and in another "
                                             "case)",
                                             kWhat, k, m.name.GetString()));
    }
    out.AddMember(json::str(k, a), m.value, a);
  }
  v = out;
}

json::Document normalized_config(const std::string& config_json) {
  // W&B's {"sagemaker": {...}} shape was unwrapped before the config got
  // here (core/resolve.hpp's merge_resource_args).
  json::Document doc = json::parse_object(config_json, kWhat);
  convert_keys(doc, doc.GetAllocator());
  return doc;
}

bool is_placeholder(const json::Value& v) {
  return v.IsString() && std::string(v.GetString()).find("{{") != std::string::npos;
}

const json::Value* member(const json::Value& obj, const char* key) {
  auto it = obj.FindMember(key);
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

const json::Value& require_object(const json::Value& obj, const char* key,
                                  const std::string& path) {
  const json::Value* v = member(obj, key);
  if (v == nullptr) {
    throw Error(Errc::invalid, fmt::format("{}: {}{} is required", kWhat, path, key));
  }
  if (!v->IsObject()) {
    throw Error(Errc::invalid, fmt::format("{}: {}{} must be an object, not {}", kWhat, path,
                                           key, json::dump(*v)));
  }
  return *v;
}

void require_string(const json::Value& obj, const char* key, const std::string& path) {
  const json::Value* v = member(obj, key);
  if (v == nullptr || (v->IsString() && v->GetStringLength() == 0)) {
    throw Error(Errc::invalid, fmt::format("{}: {}{} is required", kWhat, path, key));
  }
  if (!v->IsString()) {
    throw Error(Errc::invalid, fmt::format("{}: {}{} must be a string, not {}", kWhat, path, key,
                                           json::dump(*v)));
  }
}

void require_int(const json::Value& obj, const char* key, const std::string& path, bool required) {
  const json::Value* v = member(obj, key);
  if (v == nullptr) {
    if (!required) return;
    throw Error(Errc::invalid, fmt::format("{}: {}{} is required", kWhat, path, key));
  }
  if (is_placeholder(*v)) return;
  if (!v->IsInt64() || v->GetInt64() < 1) {
    throw Error(Errc::invalid, fmt::format("{}: {}{} must be a positive integer, not {}", kWhat,
                                           path, key, json::dump(*v)));
  }
}

// What CreateTrainingJob requires and launch does not fill in itself.
void check_shape(const json::Value& c) {
  for (const auto& m : c.GetObject()) {
    std::string k = m.name.GetString();
    if (create_members().count(k) == 0) {
      throw Error(Errc::invalid,
                  fmt::format("{}: unknown key {:?} (CreateTrainingJob has no such member)",
                              kWhat, k));
    }
  }
  if (member(c, "TrainingJobName") != nullptr) {
    throw Error(Errc::invalid, fmt::format("{}: TrainingJobName is set by launch from the run "
                                           "id (so a restarted agent finds the job); remove it",
                                           kWhat));
  }
  require_string(c, "RoleArn", "");
  require_string(require_object(c, "OutputDataConfig", ""), "S3OutputPath", "OutputDataConfig.");
  const json::Value& rc = require_object(c, "ResourceConfig", "");
  if (member(rc, "InstanceGroups") == nullptr) {
    require_string(rc, "InstanceType", "ResourceConfig.");
    require_int(rc, "InstanceCount", "ResourceConfig.", true);
  }
  require_int(rc, "VolumeSizeInGB", "ResourceConfig.", true);
  if (const json::Value* sc = member(c, "StoppingCondition")) {
    if (!sc->IsObject()) {
      throw Error(Errc::invalid, fmt::format("{}: StoppingCondition must be an object", kWhat));
    }
    require_int(*sc, "MaxRuntimeInSeconds", "StoppingCondition.", false);
    require_int(*sc, "MaxWaitTimeInSeconds", "StoppingCondition.", false);
  }
  if (const json::Value* as = member(c, "AlgorithmSpecification")) {
    if (!as->IsObject()) {
      throw Error(Errc::invalid, fmt::format("{}: AlgorithmSpecification must be an object",
                                             kWhat));
    }
    if (const json::Value* mode = member(*as, "TrainingInputMode")) {
      std::string s = mode->IsString() ? mode->GetString() : json::dump(*mode);
      if (!is_placeholder(*mode) && s != "File" && s != "Pipe" && s != "FastFile") {
        throw Error(Errc::invalid, fmt::format("{}: AlgorithmSpecification.TrainingInputMode "
                                               "{:?} must be File, Pipe or FastFile",
                                               kWhat, s));
      }
    }
  }
  if (const json::Value* env = member(c, "Environment")) {
    if (!env->IsObject()) {
      throw Error(Errc::invalid, fmt::format("{}: Environment must be an object", kWhat));
    }
  }
}

std::string sanitize(const std::string& s) {
  std::string out;
  for (char ch : s) {
    out += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '-';
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  while (!out.empty() && out.front() == '-') out.erase(out.begin());
  return out;
}

// "launch-<run id>-": every training job of one run starts so, and
// ListTrainingJobs finds them by it.
std::string job_prefix(const QueueItem& item) {
  std::string run = sanitize(item.run_id.empty() ? item.id : item.run_id);
  std::size_t room = limits::kSageMakerMaxJobName - 7 - 10;  // "launch-", "-A-R"
  return "launch-" + run.substr(0, room) + "-";
}

std::string job_name(const QueueItem& item) {
  return job_prefix(item) + std::to_string(item.attempt) + "-" + std::to_string(item.resume_count);
}

constexpr int kMaxTransientFailures = 10;

bool transient(const http::HttpError& e) {
  if (e.status() == 0 || e.status() == 429 || e.status() >= 500) return true;
  const auto* a = dynamic_cast<const aws::AwsError*>(&e);
  return a != nullptr && (a->type() == "ThrottlingException" || a->type() == "Throttling" ||
                          a->type() == "RequestLimitExceeded" ||
                          a->type() == "ServiceUnavailable");
}

bool is_interrupted(const std::string& secondary) {
  return secondary == "Interrupted" || secondary == "MaxWaitTimeExceeded";
}

// The AWS side one runner shares with its runs: credentials (refreshed as
// they age) and the region. Thread-safe.
struct Aws {
  std::string region;
  std::shared_ptr<http::AwsCredentialsProvider> credentials;
  std::mutex mu;
  std::string account;

  std::string account_id() {
    std::lock_guard<std::mutex> lock(mu);
    if (account.empty()) account = http::aws_account_id(credentials, region);
    return account;
  }
};

class SageMakerRun : public Run {
 public:
  SageMakerRun(std::shared_ptr<Aws> aws, std::string name, const std::string& log_dir,
               bool truncate_logs)
      : aws_(std::move(aws)),
        name_(std::move(name)),
        sm_(aws::kSageMaker, aws_->credentials, aws_->region),
        logs_(aws::kCloudWatchLogs, aws_->credentials, aws_->region) {
    if (!log_dir.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(log_dir, ec);
      int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (truncate_logs ? O_TRUNC : O_APPEND);
      out_fd_ = open((log_dir + "/stdout.log").c_str(), flags, 0644);
      if (out_fd_ < 0) {
        throw Error(Errc::io, fmt::format("item logs in \"{}\": {}", log_dir, std::strerror(errno)));
      }
    }
  }

  ~SageMakerRun() override {
    if (!final_) {
      // Dropped before its end (a lost lease): the training job must not
      // go on without anyone following it.
      try {
        stop();
      } catch (const Error& e) {
        log(LogLevel::warn, fmt::format("sagemaker job {}: stop: {}", name_, e.what()));
      }
    }
    if (out_fd_ >= 0) close(out_fd_);
  }

  std::string id() const override { return name_; }

  RunStatus poll() override {
    if (final_) return *final_;
    auto now = std::chrono::steady_clock::now();
    if (now < next_poll_) return RunStatus{};
    next_poll_ = now + interval_;
    interval_ = std::min(interval_ * 3 / 2, std::chrono::milliseconds(20000));
    json::Document d;
    try {
      d = describe();
      failures_ = 0;
    } catch (const http::HttpError& e) {
      // Throttling, a 5xx or a dropped connection must not fail a job that
      // is still training: asked again at the next poll, up to a point.
      if (!transient(e) || ++failures_ > kMaxTransientFailures) throw;
      log(LogLevel::warn, fmt::format("sagemaker job {}: DescribeTrainingJob: {} (asking again)",
                                      name_, e.what()));
      return RunStatus{};
    }
    try {
      copy_logs();
    } catch (const Error& e) {
      log(LogLevel::warn, fmt::format("sagemaker job {}: CloudWatch logs: {}", name_, e.what()));
    }

    std::string status = json::get_string(d, "TrainingJobStatus", "DescribeTrainingJob");
    std::string secondary = json::get_string(d, "SecondaryStatus", "DescribeTrainingJob");
    std::string reason = json::get_string(d, "FailureReason", "DescribeTrainingJob");
    RunStatus st;
    if (status == "Completed") {
      st.phase = RunPhase::finished;
      st.exit_code = 0;
    } else if ((status == "Failed" || status == "Stopped") && is_interrupted(secondary) &&
               !cancelled_) {
      st.phase = RunPhase::preempted;
      st.message = fmt::format("sagemaker job {}: {}{}", name_, secondary,
                               reason.empty() ? "" : ": " + reason);
    } else if (status == "Failed") {
      st.phase = RunPhase::failed;
      st.message = fmt::format("sagemaker job {} failed: {}", name_,
                               reason.empty() ? secondary : reason);
    } else if (status == "Stopped") {
      st.phase = RunPhase::stopped;
      st.message = cancelled_ ? "" : fmt::format("sagemaker job {} was stopped outside launch", name_);
    } else {
      return RunStatus{};
    }
    final_ = st;
    return st;
  }

  void cancel(std::chrono::milliseconds) override {
    if (final_ || cancelled_) return;
    cancelled_ = true;
    stop();
    next_poll_ = std::chrono::steady_clock::now();
    interval_ = std::chrono::milliseconds(500);
  }

 private:
  json::Document describe() {
    return sm_.call("DescribeTrainingJob", json_name());
  }

  std::string json_name() const {
    rapidjson::Document b(rapidjson::kObjectType);
    b.AddMember("TrainingJobName", json::str(name_, b.GetAllocator()), b.GetAllocator());
    return json::dump(b);
  }

  void stop() {
    try {
      sm_.call("StopTrainingJob", json_name());
    } catch (const aws::AwsError& e) {
      // Not in progress any more: it has ended, which poll() reports.
      if (e.type() != "ValidationException") throw;
    }
  }

  void write_line(const std::string& line) {
    std::string s = line + "\n";
    util::write_fully(out_fd_, s.data(), s.size());  // a full disk must not stop the job
  }

  // The job's CloudWatch log streams ("<job>/algo-1-<time>"), each copied
  // from where the last poll left off.
  void copy_logs() {
    try {
      rapidjson::Document q(rapidjson::kObjectType);
      auto& a = q.GetAllocator();
      q.AddMember("logGroupName", json::str(kLogGroup, a), a);
      q.AddMember("logStreamNamePrefix", json::str(name_ + "/", a), a);
      json::Document streams = logs_.call("DescribeLogStreams", json::dump(q));
      auto list = streams.FindMember("logStreams");
      if (list == streams.MemberEnd() || !list->value.IsArray()) return;
      int pages = 0;
      for (const auto& s : list->value.GetArray()) {
        std::string stream = json::get_string(s, "logStreamName", "DescribeLogStreams");
        std::string& token = tokens_[stream];
        while (pages++ < limits::kCloudWatchMaxPagesPerPoll) {
          rapidjson::Document g(rapidjson::kObjectType);
          auto& ga = g.GetAllocator();
          g.AddMember("logGroupName", json::str(kLogGroup, ga), ga);
          g.AddMember("logStreamName", json::str(stream, ga), ga);
          g.AddMember("startFromHead", true, ga);
          if (!token.empty()) g.AddMember("nextToken", json::str(token, ga), ga);
          json::Document page = logs_.call("GetLogEvents", json::dump(g));
          auto events = page.FindMember("events");
          std::size_t count = 0;
          if (events != page.MemberEnd() && events->value.IsArray()) {
            for (const auto& e : events->value.GetArray()) {
              write_line(json::get_string(e, "message", "GetLogEvents"));
              ++count;
            }
          }
          std::string next = json::get_string(page, "nextForwardToken", "GetLogEvents");
          // The same token again: the end of the stream, for now.
          bool end = next.empty() || next == token || count == 0;
          if (!next.empty()) token = next;
          if (end) break;
        }
      }
    } catch (const aws::AwsError& e) {
      // No log group yet (a job that has not started writing): later.
      if (e.type() != "ResourceNotFoundException") throw;
    }
  }

  std::shared_ptr<Aws> aws_;
  std::string name_;
  aws::JsonApi sm_;
  aws::JsonApi logs_;
  int out_fd_ = -1;
  std::map<std::string, std::string> tokens_;
  std::optional<RunStatus> final_;
  bool cancelled_ = false;
  int failures_ = 0;  // transient DescribeTrainingJob failures in a row
  std::chrono::steady_clock::time_point next_poll_{};
  std::chrono::milliseconds interval_{1000};
};

class SageMakerRunner : public Runner {
 public:
  explicit SageMakerRunner(RunnerContext context) : context_(std::move(context)) {}

  bool needs_image() const override { return true; }

  void check_config(const std::string& config_json) const override {
    check_shape(normalized_config(config_json));
  }

  std::unique_ptr<Run> submit(const ResolvedJob& job) override {
    json::Document c = normalized_config(job.config);
    check_shape(c);
    auto& a = c.GetAllocator();
    std::shared_ptr<Aws> aws = session();

    // A role name becomes the ARN of that role in the caller's account.
    std::string role = c["RoleArn"].GetString();
    if (role.rfind("arn:", 0) != 0) {
      role = fmt::format("arn:aws:iam::{}:role/{}", aws->account_id(), role);
      c["RoleArn"] = json::str(role, a);
    }

    std::string name = job_name(job.item);
    c.AddMember("TrainingJobName", json::str(name, a), a);

    if (!c.HasMember("AlgorithmSpecification")) {
      c.AddMember("AlgorithmSpecification", json::Value(rapidjson::kObjectType), a);
    }
    json::Value& spec = c["AlgorithmSpecification"];
    if (!job.image.empty()) {
      spec.RemoveMember("TrainingImage");
      spec.AddMember("TrainingImage", json::str(job.image, a), a);
    }
    const json::Value* image = member(spec, "TrainingImage");
    if (image == nullptr || !image->IsString() || image->GetStringLength() == 0) {
      throw Error(Errc::invalid, fmt::format("{}: the job has no image and "
                                             "AlgorithmSpecification.TrainingImage is not set",
                                             kWhat));
    }
    if (image->GetStringLength() > limits::kSageMakerMaxImage) {
      throw Error(Errc::invalid, fmt::format("{}: the image {:?} is longer than SageMaker's {} "
                                             "characters",
                                             kWhat, image->GetString(), limits::kSageMakerMaxImage));
    }
    if (!spec.HasMember("TrainingInputMode")) spec.AddMember("TrainingInputMode", "File", a);
    if (!job.argv.empty()) {
      std::vector<std::string> entry = {job.argv[0]};
      std::vector<std::string> args(job.argv.begin() + 1, job.argv.end());
      if (args.size() > limits::kSageMakerMaxArguments) {
        throw Error(Errc::invalid, fmt::format("sagemaker: {} arguments; SageMaker takes at most "
                                               "{}",
                                               args.size(), limits::kSageMakerMaxArguments));
      }
      for (const auto& s : job.argv) {
        if (s.size() > limits::kSageMakerMaxArgument) {
          throw Error(Errc::invalid,
                      fmt::format("sagemaker: the argument {:?} is longer than SageMaker's {} "
                                  "characters",
                                  s.substr(0, 40) + "...", limits::kSageMakerMaxArgument));
        }
      }
      spec.RemoveMember("ContainerEntrypoint");
      spec.RemoveMember("ContainerArguments");
      spec.AddMember("ContainerEntrypoint", json::string_array(entry, a), a);
      if (!args.empty()) spec.AddMember("ContainerArguments", json::string_array(args, a), a);
    }

    // The config's env beneath the job's (the job wins), within SageMaker's limits.
    std::map<std::string, std::string> env;
    if (c.HasMember("Environment")) {
      for (const auto& m : c["Environment"].GetObject()) {
        env[m.name.GetString()] = json::scalar_text(m.value);
      }
      c.RemoveMember("Environment");
    }
    for (const auto& kv : job.env) env[kv.first] = kv.second;
    if (env.size() > limits::kSageMakerMaxEnvironment) {
      throw Error(Errc::invalid, fmt::format("sagemaker: {} environment variables; SageMaker "
                                             "takes at most {}",
                                             env.size(), limits::kSageMakerMaxEnvironment));
    }
    for (const auto& [k, v] : env) {
      if (k.size() > limits::kSageMakerMaxEnvironmentKey ||
          v.size() > limits::kSageMakerMaxEnvironmentValue) {
        throw Error(Errc::invalid,
                    fmt::format("sagemaker: environment variable {} is {} characters long; "
                                "SageMaker takes at most {}{}",
                                k, v.size(), limits::kSageMakerMaxEnvironmentValue,
                                k == "LAUNCH_CONFIG" ? " (make the job's run config smaller)" : ""));
      }
    }
    if (!env.empty()) c.AddMember("Environment", json::string_map(env, a), a);

    if (!c.HasMember("StoppingCondition")) {
      json::Value sc(rapidjson::kObjectType);
      sc.AddMember("MaxRuntimeInSeconds", 86400, a);  // SageMaker's own default
      c.AddMember("StoppingCondition", sc, a);
    }

    // Tags say which item the job is (the console, and a human, see them).
    if (!c.HasMember("Tags")) c.AddMember("Tags", json::Value(rapidjson::kArrayType), a);
    auto tag = [&](const char* k, const std::string& v) {
      json::Value t(rapidjson::kObjectType);
      t.AddMember("Key", json::str(k, a), a);
      t.AddMember("Value", json::str(v, a), a);
      c["Tags"].PushBack(t, a);
    };
    tag("launch-item-id", job.item.id);
    tag("launch-run-id", job.item.run_id);
    tag("launch-queue", job.queue.ref().str());

    aws::JsonApi sm(aws::kSageMaker, aws->credentials, aws->region);
    try {
      sm.call("CreateTrainingJob", json::dump(c));
    } catch (const aws::AwsError& e) {
      // The job exists already: an earlier submit whose answer was lost.
      if (e.type() != "ResourceInUse") throw;
    }
    return std::make_unique<SageMakerRun>(aws, name, job.log_dir, false);
  }

  std::unique_ptr<Run> reattach(const QueueItem& item, const QueueDef&) override {
    std::shared_ptr<Aws> aws = session();
    aws::JsonApi sm(aws::kSageMaker, aws->credentials, aws->region);
    std::string prefix = job_prefix(item);
    rapidjson::Document q(rapidjson::kObjectType);
    auto& a = q.GetAllocator();
    q.AddMember("NameContains", json::str(prefix, a), a);
    q.AddMember("SortBy", "CreationTime", a);
    q.AddMember("SortOrder", "Descending", a);
    json::Document found = sm.call("ListTrainingJobs", json::dump(q));
    auto list = found.FindMember("TrainingJobSummaries");
    if (list == found.MemberEnd() || !list->value.IsArray()) return nullptr;
    std::string name;
    std::int64_t newest = -1;
    for (const auto& s : list->value.GetArray()) {
      std::string n = json::get_string(s, "TrainingJobName", "ListTrainingJobs");
      if (n.rfind(prefix, 0) != 0) continue;
      auto t = s.FindMember("CreationTime");
      std::int64_t created = t != s.MemberEnd() && t->value.IsNumber()
                                 ? static_cast<std::int64_t>(t->value.GetDouble() * 1000)
                                 : 0;
      if (created > newest) {
        newest = created;
        name = n;
      }
    }
    if (name.empty()) return nullptr;
    std::string log_dir =
        context_.launch_home.empty() ? "" : run_directory(context_.launch_home, item.id);
    // The whole log is read again from CloudWatch, so the file restarts.
    return std::make_unique<SageMakerRun>(aws, name, log_dir, true);
  }

 private:
  std::shared_ptr<Aws> session() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!aws_) {
      auto aws = std::make_shared<Aws>();
      aws->region = http::aws_region(context_.region);
      aws->credentials = http::default_aws_credentials();
      aws_ = aws;
    }
    return aws_;
  }

  RunnerContext context_;
  std::mutex mu_;
  std::shared_ptr<Aws> aws_;
};

}  // namespace

std::unique_ptr<Runner> make_sagemaker_runner(const RunnerContext& context) {
  return std::make_unique<SageMakerRunner>(context);
}

}  // namespace launch
