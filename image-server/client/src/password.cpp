#include "heirloom/client/password.hpp"

#include <cstdlib>
#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

namespace heirloom::client {

Result<std::string> read_password(const std::string& prompt) {
    if (const char* env = std::getenv("HEIRLOOM_PASSWORD"); env && *env) {
        std::string password = env;
        ::unsetenv("HEIRLOOM_PASSWORD"); // never inherited by anything this process starts
        return password;
    }
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

} // namespace heirloom::client
