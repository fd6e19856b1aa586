#pragma once

// Kerberos single sign-on over HTTP ("Authorization: Negotiate", RFC 4559) through GSSAPI (MIT
// krb5): the client makes a token for the server's service principal HTTP/host@REALM from the
// user's ticket cache (a ticket from kinit or the desktop's domain logon), the server accepts
// it with the keys of that principal (a keytab exported from the domain) and learns who the
// user is ("alice@HEIRLOOM.TEST"). Only over TLS: the token proves the user, TLS the server.

#include "heirloom/common/error.hpp"
#include "heirloom/common/file.hpp"

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace heirloom::negotiate {

// The client's side: a token (base64, for "Negotiate TOKEN") for the HTTP service of host,
// from the default ticket cache (KRB5CCNAME). Errc::not_found when there is no usable ticket
// (no cache, expired, a realm without a ticket-granting ticket), with GSSAPI's reason.
Result<std::string> client_token(std::string_view host);

// The server's side: accepts tokens with the keys in a keytab.
class Acceptor {
  public:
    // Opens the keytab (which must exist and be readable). Errc::invalid_argument otherwise.
    static Result<std::unique_ptr<Acceptor>> open(const fs::path& keytab);
    ~Acceptor();
    Acceptor(const Acceptor&) = delete;
    Acceptor& operator=(const Acceptor&) = delete;

    struct Accepted {
        std::string principal; // the client, "alice@HEIRLOOM.TEST"
        std::string reply;     // base64 token for "WWW-Authenticate: Negotiate", may be empty
    };
    // Accepts one base64 token in one round: Kerberos, or SPNEGO around Kerberos.
    // Errc::invalid_argument for text that is not base64; Errc::crypto for a token that is not
    // good (wrong key, expired, replayed, for another service) with GSSAPI's reason.
    // Thread-safe.
    Result<Accepted> accept(std::string_view token);

  private:
    struct State;
    explicit Acceptor(std::unique_ptr<State> state);
    std::unique_ptr<State> state_;
};

// The login name of a user principal of realm: "alice@HEIRLOOM.TEST" gives "alice" for realm
// heirloom.test (any case). Nothing for another realm, a service ("HTTP/x@R"), an enterprise
// name or malformed text.
std::optional<std::string> user_of_principal(std::string_view principal, std::string_view realm);

// The Kerberos realm Active Directory gives a base DN: DC=heirloom,DC=test is HEIRLOOM.TEST.
// Empty when the DN has no dc= parts.
std::string realm_of_base_dn(std::string_view base_dn);

// Base64 (RFC 4648, padded, canonical) as Negotiate headers carry it; decode refuses
// anything else.
std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64_decode(std::string_view text);

} // namespace heirloom::negotiate
