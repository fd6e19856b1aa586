#pragma once

// Errors as values: every fallible function across a module boundary returns Result<T>.
// Callers add context on the way up, so the final message reads like
// "sync image payroll v7: chunk 4411: authentication tag mismatch".

#include <expected>
#include <string>
#include <string_view>
#include <utility>

namespace heirloom {

enum class Errc {
    invalid_argument, // the caller asked for something that cannot be done
    io,               // the operating system refused a file or socket operation
    corrupt,          // data is malformed, truncated or fails a check
    crypto,           // authentication, signature or key mismatch
    not_found,        // a named thing does not exist
    unsupported,      // valid but not something we handle (yet)
    network,          // a remote peer failed or answered badly
    conflict,         // the operation clashes with existing state
    cancelled,        // stopped on request
    denied,           // the caller is known but not allowed to do this
};

std::string_view errc_name(Errc code);

struct Error {
    Errc code = Errc::io;
    std::string message;

    // Prefixes the message with what the caller was doing: "what: message".
    [[nodiscard]] Error context(std::string_view what) const& {
        return Error{code, std::string(what) + ": " + message};
    }
    [[nodiscard]] Error context(std::string_view what) && {
        message.insert(0, std::string(what) + ": ");
        return std::move(*this);
    }
};

template <class T> using Result = std::expected<T, Error>;
using Status = std::expected<void, Error>;

// Builds the error side of a Result: `return fail(Errc::corrupt, "bad magic");`.
inline std::unexpected<Error> fail(Errc code, std::string message) {
    return std::unexpected(Error{code, std::move(message)});
}

// Makes an error message from errno for an operation on a path.
std::unexpected<Error> fail_errno(std::string_view operation, std::string_view path);

} // namespace heirloom

// Returns early from the enclosing function when `expr` (a Result) holds an error,
// otherwise yields its value. Keeps call chains flat without exceptions.
#define HL_TRY(expr)                                                                               \
    __extension__({                                                                                \
        auto&& hl_try_result_ = (expr);                                                            \
        if (!hl_try_result_)                                                                       \
            return std::unexpected(std::move(hl_try_result_).error());                             \
        std::move(hl_try_result_).value();                                                         \
    })

// Like HL_TRY, but adds context to the error on the way up.
#define HL_TRY_CTX(expr, ctx)                                                                      \
    __extension__({                                                                                \
        auto&& hl_try_result_ = (expr);                                                            \
        if (!hl_try_result_)                                                                       \
            return std::unexpected(std::move(hl_try_result_).error().context(ctx));                \
        std::move(hl_try_result_).value();                                                         \
    })
