// launch — where launch keeps its files on this machine, and as whom.
//
//   $LAUNCH_HOME/launch.db          the default store (see transport.hpp)
//   $LAUNCH_HOME/runs/<item id>/    one directory per item: stdout.log,
//                                   stderr.log, build.log; for local-process
//                                   runs also what their supervisor
//                                   (`launch-supervise` in ps) records, so
//                                   a run outlives a killed agent: its
//                                   pids, a lock held while it lives, and
//                                   the job's exit status
//   $LAUNCH_HOME/agents/<id>.lock   held by the live agent of that id
//   $LAUNCH_HOME/agents/<id>.reports  its reports the store has not taken
//
// LAUNCH_HOME defaults to ~/.local/share/launch.
#ifndef LAUNCH_HOME_HPP
#define LAUNCH_HOME_HPP

#include <string>

#include "launch/export.h"

namespace launch {

// $LAUNCH_HOME, else $HOME/.local/share/launch. Errc::invalid when neither
// LAUNCH_HOME nor a home directory is known.
LAUNCH_EXPORT std::string launch_home();

// The directory of an item's logs under `home`: home/runs/<item_id>.
LAUNCH_EXPORT std::string run_directory(const std::string& home, const std::string& item_id);

// The name of the OS user this process acts as (its effective uid), else
// $USER; "" when neither tells. The entity of last resort for the CLI and
// the agent.
LAUNCH_EXPORT std::string os_user_name();

}  // namespace launch

#endif
