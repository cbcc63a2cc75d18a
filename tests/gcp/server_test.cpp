// The test server's CustomJob check is Google's protos, and it can fail:
// bodies it must refuse are refused with 400 naming the field, through the
// API and through the runner.
#include <doctest/doctest.h>

#include "gcp_server.hpp"
#include "http/gcp_credentials.hpp"
#include "launch/launch.hpp"

using namespace launch;

namespace {

const char* kGood = R"({"display_name": "x", "labels": {"a": "b"},
  "job_spec": {"worker_pool_specs": [{"machine_spec": {"machine_type": "n1-standard-4"},
    "replica_count": "1", "container_spec": {"image_uri": "gcr.io/p/i", "env": [{"name": "A", "value": "b"}]}}],
    "scheduling": {"timeout": "3600s"}}})";

std::string validate(const std::string& body) {
  return gcp_test::Server::get().post("/_test/validate", body);
}

}  // namespace

TEST_CASE("gcp server: the proto check refuses what Google refuses, naming the field") {
  CHECK(validate(kGood).find("\"ok\": true") != std::string::npos);
  struct Bad {
    const char* body;
    const char* says;
  } cases[] = {
      {R"({"display_name": "x", "job_spec": {"worker_pool_specs": [{"machine_spec": {"machine_type": "n1", "machineTypo": 1}, "replica_count": 1, "container_spec": {"image_uri": "i"}}]}})",
       "Unknown name \\\"machineTypo\\\" at 'custom_job.job_spec.worker_pool_specs[0].machine_spec'"},
      {R"({"display_name": "x", "job_spec": {"worker_pool_specs": [{"machine_spec": {"machine_type": "n1"}, "replica_count": "one", "container_spec": {"image_uri": "i"}}]}})",
       "custom_job.job_spec.worker_pool_specs[0].replica_count' (TYPE_INT64)"},
      {R"({"display_name": "x", "job_spec": {"worker_pool_specs": [{"machine_spec": {"machine_type": "n1"}, "replica_count": 1, "container_spec": {"image_uri": "i"}}], "scheduling": {"timeout": 3600}}})",
       "custom_job.job_spec.scheduling.timeout' (google.protobuf.Duration)"},
      {R"({"display_name": "x", "job_spec": {"worker_pool_specs": [{"machine_spec": {"machine_type": "n1"}, "replica_count": 1, "container_spec": {}}]}})",
       "Required field 'custom_job.job_spec.worker_pool_specs[0].container_spec.image_uri'"},
      {R"({"job_spec": {"worker_pool_specs": [{"machine_spec": {"machine_type": "n1"}, "replica_count": 1, "container_spec": {"image_uri": "i"}}]}})",
       "Required field 'custom_job.display_name'"},
      {R"({"display_name": "x", "job_spec": {"worker_pool_specs": [{"machine_spec": {"machine_type": "n1", "accelerator_type": "NVIDIA_TESLA_X"}, "replica_count": 1, "container_spec": {"image_uri": "i"}}]}})",
       "machine_spec.accelerator_type' (TYPE_ENUM google.cloud.aiplatform.v1.AcceleratorType)"},
      {R"({"display_name": "x", "job_spec": {"worker_pool_specs": [{"machine_spec": {"machine_type": "n1"}, "replica_count": 1, "container_spec": {"image_uri": "i"}, "python_package_spec": {"executor_image_uri": "i", "python_module": "m"}}]}})",
       "are both in oneof task"},
      {R"({"display_name": "x", "displayName": "y", "job_spec": {}})", "is given twice"},
      {R"({"display_name": "x", "job_spec": {"worker_pool_specs": [{"machine_spec": {"machine_type": "n1"}, "replica_count": 1, "container_spec": {"image_uri": "i", "env": {"A": "b"}}}]}})",
       "container_spec.env' (TYPE_LIST)"},
      {R"({"display_name": "x", "labels": {"Team": "ml"}, "job_spec": {"worker_pool_specs": [{"machine_spec": {"machine_type": "n1"}, "replica_count": 1, "container_spec": {"image_uri": "i"}}]}})",
       "custom_job.labels: invalid key 'Team'"},
  };
  for (const auto& c : cases) {
    std::string said = validate(c.body);
    CHECK_MESSAGE(said.find("\"ok\": false") != std::string::npos, c.body);
    CHECK_MESSAGE(said.find(c.says) != std::string::npos, said);
  }
}

TEST_CASE("gcp server: a bad CustomJob sent to the API is a 400 naming the field") {
  gcp_test::WithServiceAccount env;
  auto creds = http::default_gcp_credentials();
  http::Client c;
  http::Request r;
  r.method = "POST";
  r.url = env.server.url("/v1/projects/launch-test-project/locations/us-central1/customJobs");
  r.auth = creds;
  r.headers.set("Content-Type", "application/json");
  r.body = R"({"display_name": "x", "job_spec": {"worker_pool_specs": [{"machine_spec": {"machine_type": "n1"}, "replicaCount": 1.5, "container_spec": {"image_uri": "i"}}]}})";
  auto resp = c.send(r, true);
  CHECK(resp.status == 400);
  CHECK(resp.body.find("replica_count") != std::string::npos);
  CHECK(resp.body.find("INVALID_ARGUMENT") != std::string::npos);
  // Without a token: 401.
  r.auth = nullptr;
  r.body = kGood;
  CHECK(c.send(r, true).status == 401);
}

TEST_CASE("gcp server: the runner passes on Vertex's refusal, naming the field") {
  gcp_test::WithServiceAccount env;
  ResolvedJob job;
  job.item.id = "refused";
  job.item.run_id = "refused-run";
  job.item.attempt = 1;
  job.config = R"({"project": "launch-test-project", "region": "us-central1", "spec": {
      "staging_bucket": "gs://b", "worker_pool_specs": [{"machine_spec": {"machine_type": "n1",
      "accelerator_type": "NVIDIA_TESLA_X"}, "replica_count": 1, "container_spec": {}}]}})";
  job.image = "gcr.io/p/i";
  auto runner = make_runner("gcp-vertex", RunnerContext{});
  CHECK_THROWS_WITH(runner->submit(job), doctest::Contains("accelerator_type"));
}
