#include "session.hpp"

#include "heirloom/common/json.hpp"

#include <cstdio>
#include <cstdlib>

namespace heirloom::admin {

fs::path session_file() {
    if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg && *xdg)
        return fs::path(xdg) / "heirloom" / "admin-session.json";
    const char* home = std::getenv("HOME");
    return fs::path(home && *home ? home : "/tmp") / ".config" / "heirloom" / "admin-session.json";
}

Status save_session(const Session& s) {
    Json doc = {{"server", s.server},
                {"ca_file", s.ca_file},
                {"user", s.user},
                {"token", s.token},
                {"expires_at", s.expires_at}};
    fs::path file = session_file();
    HL_TRY(make_dirs(file.parent_path()));
    std::string text = doc.dump(2) + "\n";
    return write_file_atomic(file, as_bytes(text), Durability::fsync, FileMode::owner_only);
}

Result<Session> load_session(std::int64_t now) {
    fs::path file = session_file();
    if (!fs::exists(file))
        return fail(Errc::not_found,
                    "not logged in: run heirloom-admin login --server URL --user NAME");
    std::string text = HL_TRY(read_text_file(file, 64 << 10));
    Json doc = HL_TRY_CTX(parse_json(text), file.string());
    Session s;
    try {
        s.server = doc.at("server").get<std::string>();
        s.ca_file = doc.at("ca_file").get<std::string>();
        s.user = doc.at("user").get<std::string>();
        s.token = doc.at("token").get<std::string>();
        s.expires_at = doc.at("expires_at").get<std::int64_t>();
    } catch (const Json::exception&) {
        return fail(Errc::corrupt, file.string() + " is damaged; log in again");
    }
    if (s.expires_at <= now)
        return fail(Errc::not_found,
                    "your login to " + s.server + " has expired: run heirloom-admin login again");
    return s;
}

Status forget_session() {
    std::error_code ec;
    fs::remove(session_file(), ec);
    if (ec)
        return fail(Errc::io, "remove " + session_file().string() + ": " + ec.message());
    return {};
}

} // namespace heirloom::admin
