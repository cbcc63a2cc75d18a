// launch — everything of the C++ API in one include.
#ifndef LAUNCH_LAUNCH_HPP
#define LAUNCH_LAUNCH_HPP

#include "launch/accounts.hpp"
#include "launch/agent.hpp"
#include "launch/api.hpp"
#include "launch/builder.hpp"
#include "launch/error.hpp"
#include "launch/home.hpp"
#include "launch/job.hpp"
#include "launch/log.hpp"
#include "launch/queue.hpp"
#include "launch/runner.hpp"
#include "launch/template.hpp"
#include "launch/transport.hpp"
#include "launch/version.hpp"

#endif
