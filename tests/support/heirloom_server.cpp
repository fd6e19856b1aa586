#include "support/heirloom_server.hpp"

#include "heirloom/common/json.hpp"

#include <fstream>
#include <sstream>

namespace heirloom::test {

namespace {

// The configuration file's names (as in server/config.cpp, which the console's tests, linking
// this file, do not link).
std::string type_name(server::DirectoryType type) {
    switch (type) {
    case server::DirectoryType::active_directory:
        return "active-directory";
    case server::DirectoryType::posix:
        return "posix";
    case server::DirectoryType::openldap:
        break;
    }
    return "openldap";
}

std::string tls_name(server::DirectoryTls tls) {
    return tls == server::DirectoryTls::ldaps   ? "ldaps"
           : tls == server::DirectoryTls::plain ? "plain"
                                                : "start-tls";
}

std::string membership_name(server::GroupMembership membership) {
    switch (membership) {
    case server::GroupMembership::member_of:
        return "member-of";
    case server::GroupMembership::group_member:
        return "group-member";
    case server::GroupMembership::posix:
        return "posix";
    case server::GroupMembership::in_chain:
        return "in-chain";
    case server::GroupMembership::automatic:
        break;
    }
    return "automatic";
}

} // namespace

HeirloomServer::HeirloomServer(const Slapd& slapd, HeirloomServerOptions options)
    : HeirloomServer(slapd.config(), options) {}

HeirloomServer::HeirloomServer(const server::DirectoryConfig& directory,
                               HeirloomServerOptions options)
    : data_(dir_ / "data"), config_(dir_ / "server.json"), log_(dir_ / "server.log") {
    tls_ = !options.plain_http;
    std::string program = (bin_dir() / "heirloom-server").string();
    if (!fs::exists(program)) {
        set_missing(program + " is not built");
        return;
    }
    std::string problem;
    if (!make_test_certificate(dir_.path(), tls_files_, problem)) {
        set_missing(problem);
        return;
    }
    write_file(dir_ / "service.pw", as_bytes(directory.bind_password + "\n"));
    fs::permissions(dir_ / "service.pw", fs::perms::owner_read | fs::perms::owner_write,
                    fs::perm_options::replace);
    Json directory_json = {{"type", type_name(directory.type)},
                           {"uri", directory.uri},
                           {"tls", tls_name(directory.tls)},
                           {"ca_file", directory.ca_file},
                           {"base_dn", directory.base_dn},
                           {"bind_dn", directory.bind_dn},
                           {"bind_password_file", (dir_ / "service.pw").string()},
                           {"user_base", directory.user_base},
                           {"group_base", directory.group_base},
                           {"user_attribute", directory.user_attribute},
                           {"user_object_class", directory.user_object_class},
                           {"user_filter", directory.user_filter},
                           {"group_attribute", directory.group_attribute},
                           {"group_object_class", directory.group_object_class},
                           {"membership", membership_name(directory.membership)},
                           {"timeout_seconds", options.directory_timeout_seconds}};
    if (!directory.netbios_domain.empty())
        directory_json["netbios_domain"] = directory.netbios_domain;
    Json config = {
        {"data_dir", data_.string()},
        {"tls_certificate", tls_files_.certificate.string()},
        {"tls_key", tls_files_.key.string()},
        {"log_level", "debug"},
        {"plain_http", options.plain_http},
        {"directory", directory_json},
        {"limits",
         {{"membership_cache_seconds", options.membership_cache_seconds},
          {"header_timeout_seconds", options.header_timeout_seconds},
          {"max_connections", options.max_connections},
          {"max_active_requests", options.max_active_requests}}},
    };
    if (!options.kerberos_keytab.empty())
        config["kerberos_keytab"] = options.kerberos_keytab.string();
    std::string text = config.dump(2);
    write_file(config_, as_bytes(text));
    launch();
}

void HeirloomServer::launch(int fixed_port) {
    std::string program = (bin_dir() / "heirloom-server").string();
    start(
        "heirloom-server",
        [&](int port) {
            return std::vector<std::string>{program,    "serve",
                                            "--config", config_.string(),
                                            "--listen", "127.0.0.1:" + std::to_string(port)};
        },
        log_, fixed_port);
}

void HeirloomServer::restart() {
    int same = port();
    stop();
    launch(same);
}

std::string HeirloomServer::log_text() const {
    std::ifstream in(log_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

} // namespace heirloom::test
