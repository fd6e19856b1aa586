#include "support/server_deployment.hpp"

#include <catch2/catch.hpp>

namespace heirloom::test {

RunResult run_admin(const fs::path& home, const std::vector<std::string>& args,
                    const std::string& password) {
    std::vector<std::string> argv = {"/usr/bin/env",
                                     "HOME=" + home.string(),
                                     "XDG_CONFIG_HOME=",
                                     "XDG_CACHE_HOME=",
                                     "HEIRLOOM_PASSWORD=" + password,
                                     (bin_dir() / "heirloom-admin").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
}

void admin_login(const HeirloomServer& server, const fs::path& home) {
    auto r = run_admin(home, {"login", "--server", server.url(), "--user", "carol", "--ca-file",
                              server.ca_file().string()});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
}

std::uint64_t push_disk(const HeirloomServer& server, const fs::path& home,
                        const std::string& image, const SyntheticDisk& disk, const fs::path& work) {
    fs::path vhd = work / (image + ".vhd");
    write_vhd(vhd, disk.content, 7);
    auto r = run_admin(home, {"image", "push", image, vhd.string(), "--json"});
    INFO(r.err << server.log_text().substr(0, 4000));
    REQUIRE(r.exit_code == 0);
    auto doc = parse_json(r.out);
    REQUIRE(doc);
    return (*doc)["version"].get<std::uint64_t>();
}

Json assignment(const std::string& workspace, const std::string& kind, const std::string& name,
                const std::string& clipboard, const std::string& file_transfer,
                const std::string& printing, const std::string& removable_media, bool overriding) {
    return {{"workspace", workspace},
            {"principal", {{"kind", kind}, {"name", name}}},
            {"controls",
             {{"clipboard", clipboard},
              {"file_transfer", file_transfer},
              {"printing", printing},
              {"removable_media", removable_media}}},
            {"expires_at", 0},
            {"offline_limit", 86400},
            {"on_expiry", "stop"},
            {"overriding", overriding}};
}

Json workspace(const std::string& image, const std::string& display_name) {
    return {{"display_name", display_name},
            {"image", image},
            {"persistence", "persistent"},
            {"memory_mib", 512},
            {"network", {{"mode", "nat"}}}};
}

Enrolment enrol(const HeirloomServer& server, const std::string& user, const std::string& password,
                const std::string& hostname) {
    auto api = server.client();
    auto answer =
        api->post("/v1/enrol", {{"user", user}, {"password", password}, {"hostname", hostname}});
    INFO((answer ? "" : answer.error().message));
    REQUIRE(answer);
    Enrolment e;
    e.agent_id = (*answer)["agent_id"].get<std::string>();
    e.token = (*answer)["agent_token"].get<std::string>();
    auto key = from_hex_fixed<32>((*answer)["signing_public_key"].get<std::string>());
    REQUIRE(key);
    e.server_key = *key;
    return e;
}

std::unique_ptr<client::ApiClient> agent_client(const HeirloomServer& server, const Enrolment& e) {
    auto api = server.client();
    api->set_token(e.token);
    return api;
}

} // namespace heirloom::test
