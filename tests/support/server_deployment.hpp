#pragma once

// A small deployment for the server's integration tests: the demo directory (slapd), the real
// heirloom-server, images pushed with the real heirloom-admin, and workspaces assigned to the
// directory's groups through the admin API.

#include "heirloom/client/api_client.hpp"
#include "support/heirloom_server.hpp"
#include "support/images.hpp"
#include "support/slapd.hpp"
#include "support/support.hpp"

#include <string>
#include <vector>

namespace heirloom::test {

// Runs heirloom-admin with its own HOME (so its saved login is the test's) and a password in
// HEIRLOOM_PASSWORD.
RunResult run_admin(const fs::path& home, const std::vector<std::string>& args,
                    const std::string& password = "carol-pw");

// Logs heirloom-admin in as carol (an admin) to server.
void admin_login(const HeirloomServer& server, const fs::path& home);

// Writes disk as a VHD and pushes it with heirloom-admin; returns the pushed version.
std::uint64_t push_disk(const HeirloomServer& server, const fs::path& home,
                        const std::string& image, const SyntheticDisk& disk, const fs::path& work);

// An assignment of workspace to a group or user with the given controls, as admin JSON.
Json assignment(const std::string& workspace, const std::string& kind, const std::string& name,
                const std::string& clipboard, const std::string& file_transfer,
                const std::string& printing, const std::string& removable_media,
                bool overriding = false);

// A workspace on image, as admin JSON.
Json workspace(const std::string& image, const std::string& display_name);

// Enrols an endpoint for user; returns {agent token, server signing key hex}.
struct Enrolment {
    std::string agent_id;
    std::string token;
    crypto::SigningPublicKey server_key{};
};
Enrolment enrol(const HeirloomServer& server, const std::string& user, const std::string& password,
                const std::string& hostname = "pc-test");

// A client that speaks for an enrolled agent.
std::unique_ptr<client::ApiClient> agent_client(const HeirloomServer& server, const Enrolment& e);

} // namespace heirloom::test
