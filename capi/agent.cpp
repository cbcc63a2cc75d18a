// Agents: launch-config text or file plus overrides, run/step/stop, and job
// events as JSON.
#include <chrono>
#include <string>

#include "capi.hpp"
#include "launch/agent.hpp"

namespace {

using launch::Errc;
using launch::Error;
using launch::capi::clear;
using launch::capi::guard;
using launch::capi::null_argument;
using launch::capi::put;

void check_version(unsigned int version, const char* what) {
  if (version == 0 || version > LAUNCH_AGENT_OPTIONS_VERSION) {
    throw Error(Errc::invalid, std::string(what) + ": version " + std::to_string(version) +
                                   " is not supported (this library knows 1.." +
                                   std::to_string(LAUNCH_AGENT_OPTIONS_VERSION) + ")");
  }
}

launch::AgentConfig make_config(const launch_agent_options& o) {
  if (o.config_yaml && o.config_path) {
    throw Error(Errc::invalid,
                "launch_agent_options: give config_yaml or config_path, not both");
  }
  launch::AgentConfig config;
  if (o.config_path) {
    config = launch::AgentConfig::from_file(o.config_path);
  } else if (o.config_yaml) {
    config = launch::AgentConfig::from_yaml(o.config_yaml, "launch-config");
  }
  if (o.use_environment) config.apply_environment();
  if (o.entity) config.entity = o.entity;
  if (o.queue_count > 0) {
    if (!o.queues) {
      throw Error(Errc::invalid, "launch_agent_options: queues is NULL but queue_count is " +
                                     std::to_string(o.queue_count));
    }
    config.queues.clear();
    for (size_t i = 0; i < o.queue_count; ++i) {
      if (!o.queues[i]) {
        throw Error(Errc::invalid,
                    "launch_agent_options: queues[" + std::to_string(i) + "] is NULL");
      }
      config.queues.emplace_back(o.queues[i]);
    }
  }
  if (o.max_jobs != 0) config.max_jobs = o.max_jobs;
  config.validate();
  return config;
}

}  // namespace

extern "C" {

int launch_agent_options_init(launch_agent_options* opts, unsigned int version) {
  if (!opts) return null_argument("launch_agent_options_init", "opts");
  return guard([&] {
    check_version(version, "launch_agent_options_init");
    *opts = launch_agent_options{};
    opts->version = version;
    opts->use_environment = 1;
    return LAUNCH_OK;
  });
}

int launch_agent_create(launch_agent** out, launch_transport* transport,
                        const launch_agent_options* opts) {
  if (!out) return null_argument("launch_agent_create", "out");
  *out = nullptr;
  return guard([&] {
    launch_agent_options o{};
    o.version = LAUNCH_AGENT_OPTIONS_VERSION;
    o.use_environment = 1;
    if (opts) {
      check_version(opts->version, "launch_agent_options");
      o = *opts;  // version 1 is the whole struct
    }
    launch::AgentConfig config = make_config(o);
    std::shared_ptr<launch::Transport> t;
    if (transport) {
      t = transport->rep;
    } else {
      t = launch::open_transport(config.queue_uri.empty() ? launch::default_transport_uri()
                                                          : config.queue_uri);
    }
    auto handle = std::make_unique<launch_agent>();
    handle->rep = std::make_unique<launch::Agent>(std::move(config), std::move(t));
    *out = handle.release();
    return LAUNCH_OK;
  });
}

void launch_agent_destroy(launch_agent* agent) {
  // The agent's destructor may report to its store; a failure there has
  // nowhere to go but the last error.
  guard([&] {
    delete agent;
    return LAUNCH_OK;
  });
}

int launch_agent_run(launch_agent* agent) {
  if (!agent) return null_argument("launch_agent_run", "agent");
  return guard([&] {
    agent->rep->run();
    return LAUNCH_OK;
  });
}

int launch_agent_step(launch_agent* agent, int timeout_ms) {
  if (!agent) return null_argument("launch_agent_step", "agent");
  return guard([&] {
    if (timeout_ms < 0) {
      throw Error(Errc::invalid,
                  "launch_agent_step: timeout_ms " + std::to_string(timeout_ms) + " is negative");
    }
    return agent->rep->step(std::chrono::milliseconds(timeout_ms)) ? 1 : 0;
  });
}

int launch_agent_stop(launch_agent* agent, int mode) {
  // No allocation on the good path: this may run in a signal handler.
  if (!agent) return null_argument("launch_agent_stop", "agent");
  if (mode != LAUNCH_STOP_DRAIN && mode != LAUNCH_STOP_CANCEL) {
    launch::capi::set_error("launch_agent_stop: mode is not LAUNCH_STOP_DRAIN or LAUNCH_STOP_CANCEL");
    return LAUNCH_EINVALID;
  }
  return guard([&] {
    agent->rep->stop(mode == LAUNCH_STOP_DRAIN ? launch::StopMode::drain
                                               : launch::StopMode::cancel);
    return LAUNCH_OK;
  });
}

int launch_agent_id(const launch_agent* agent, char** id_out) {
  clear(id_out);
  if (!agent) return null_argument("launch_agent_id", "agent");
  if (!id_out) return null_argument("launch_agent_id", "id_out");
  return guard([&] {
    put(id_out, agent->rep->id());
    return LAUNCH_OK;
  });
}

int launch_agent_running_jobs(const launch_agent* agent) {
  if (!agent) return null_argument("launch_agent_running_jobs", "agent");
  return guard([&] { return agent->rep->running_jobs(); });
}

int launch_agent_on_event(launch_agent* agent, launch_event_fn callback, void* user) {
  if (!agent) return null_argument("launch_agent_on_event", "agent");
  return guard([&] {
    if (!callback) {
      agent->rep->on_event([](const launch::JobEvent&) {});
    } else {
      agent->rep->on_event([callback, user](const launch::JobEvent& e) {
        callback(launch::to_json(e).c_str(), user);
      });
    }
    return LAUNCH_OK;
  });
}

}  // extern "C"
