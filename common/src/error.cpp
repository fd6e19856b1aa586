#include "heirloom/common/error.hpp"

#include <cerrno>
#include <cstring>

namespace heirloom {

std::string_view errc_name(Errc code) {
    switch (code) {
    case Errc::invalid_argument:
        return "invalid argument";
    case Errc::io:
        return "I/O error";
    case Errc::corrupt:
        return "corrupt data";
    case Errc::crypto:
        return "authentication failed";
    case Errc::not_found:
        return "not found";
    case Errc::unsupported:
        return "unsupported";
    case Errc::network:
        return "network error";
    case Errc::conflict:
        return "conflict";
    case Errc::cancelled:
        return "cancelled";
    case Errc::denied:
        return "denied";
    }
    return "error";
}

std::unexpected<Error> fail_errno(std::string_view operation, std::string_view path) {
    int err = errno;
    Errc code = err == ENOENT ? Errc::not_found : Errc::io;
    return fail(code, std::string(operation) + " " + std::string(path) + ": " + std::strerror(err));
}

} // namespace heirloom
