#pragma once

// Where the agent keeps things, per user:
//   state   $XDG_DATA_HOME/heirloom (~/.local/share/heirloom): enrolment, sealed secrets,
//           the cached signed policy, the time anchor, image stores
//   runtime $XDG_RUNTIME_DIR/heirloom (/run/user/UID/heirloom): the daemon's socket
//   config  $XDG_CONFIG_HOME/heirloom/agent.json: local settings (seed folders, intervals)
// Every folder is created mode 0700 and refused when another user owns it or it is open to
// group or others.

#include "heirloom/common/error.hpp"
#include "heirloom/common/file.hpp"

namespace heirloom::agent {

struct AgentPaths {
    fs::path state;
    fs::path runtime;
    fs::path config_file;

    fs::path socket() const { return runtime / "agent.sock"; }
    fs::path images() const { return state / "images"; }
    fs::path image_store(std::string_view image) const { return images() / image; }
};

// The paths from the XDG variables (HEIRLOOM_STATE_DIR and HEIRLOOM_RUNTIME_DIR override them).
Result<AgentPaths> default_paths();

// Creates dir (and parents) as needed, mode 0700, and checks it is ours and private.
Status ensure_private_dir(const fs::path& dir);

} // namespace heirloom::agent
