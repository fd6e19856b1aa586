#pragma once

// The admin's login, kept between heirloom-admin commands in
// $XDG_CONFIG_HOME/heirloom/admin-session.json (or ~/.config/…), mode 0600, and the password
// prompt. Passwords come from the terminal (no echo) or HEIRLOOM_PASSWORD, never from argv.

#include "heirloom/common/error.hpp"
#include "heirloom/common/file.hpp"

#include <cstdint>
#include <string>

namespace heirloom::admin {

struct Session {
    std::string server;
    std::string ca_file;
    std::string user;
    std::string token;
    std::int64_t expires_at = 0;
};

fs::path session_file();
Status save_session(const Session& session);
// The saved session; Errc::not_found with "log in first" when there is none or it expired.
Result<Session> load_session(std::int64_t now);
Status forget_session();

} // namespace heirloom::admin
