#include "session.hpp"

#include "heirloom/common/json.hpp"

#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

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

Result<std::string> read_password(const std::string& prompt) {
    if (const char* env = std::getenv("HEIRLOOM_PASSWORD"); env && *env)
        return std::string(env);
    int tty = ::open("/dev/tty", O_RDWR | O_CLOEXEC);
    if (tty < 0)
        return fail(Errc::invalid_argument,
                    "no terminal to ask for the password: set HEIRLOOM_PASSWORD instead");
    termios old{};
    bool have_termios = ::tcgetattr(tty, &old) == 0;
    if (have_termios) {
        termios quiet = old;
        quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
        ::tcsetattr(tty, TCSAFLUSH, &quiet);
    }
    [[maybe_unused]] auto w = ::write(tty, prompt.data(), prompt.size());
    std::string password;
    char c = 0;
    while (::read(tty, &c, 1) == 1 && c != '\n' && c != '\r' && password.size() < 1024)
        password += c;
    if (have_termios)
        ::tcsetattr(tty, TCSAFLUSH, &old);
    w = ::write(tty, "\n", 1);
    ::close(tty);
    if (password.empty())
        return fail(Errc::invalid_argument, "empty password");
    return password;
}

} // namespace heirloom::admin
