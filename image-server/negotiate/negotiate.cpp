#include "heirloom/negotiate/negotiate.hpp"

#include <gssapi/gssapi.h>
#include <gssapi/gssapi_ext.h>
#include <mutex>
#include <unistd.h>

namespace heirloom::negotiate {

namespace {

constexpr std::size_t max_token_bytes = 64 * 1024; // tickets with many groups run to ~12 KiB

// GSSAPI's words for a major and minor status.
std::string describe(OM_uint32 major, OM_uint32 minor, gss_OID mech = GSS_C_NO_OID) {
    std::string text;
    const auto add = [&](OM_uint32 code, int type) {
        OM_uint32 context = 0;
        do {
            OM_uint32 ignored = 0;
            gss_buffer_desc message = GSS_C_EMPTY_BUFFER;
            if (GSS_ERROR(gss_display_status(&ignored, code, type, mech, &context, &message)))
                break;
            if (!text.empty())
                text += ": ";
            text.append(static_cast<const char*>(message.value), message.length);
            gss_release_buffer(&ignored, &message);
        } while (context != 0);
    };
    add(major, GSS_C_GSS_CODE);
    if (minor != 0)
        add(minor, GSS_C_MECH_CODE);
    return text;
}

std::string lower(std::string_view text) {
    std::string out(text);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z')
            c = static_cast<char>(c - 'A' + 'a');
    return out;
}

// The Kerberos 5 mechanism (1.2.840.113554.1.2.2), as tokens are made.
gss_OID_desc krb5_mechanism{9, const_cast<char*>("\x2a\x86\x48\x86\xf7\x12\x01\x02\x02")};

} // namespace

std::string base64_encode(std::string_view bytes) {
    static constexpr char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        const auto n = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
        out += alphabet[(n >> 18) & 63];
        out += alphabet[(n >> 12) & 63];
        out += alphabet[(n >> 6) & 63];
        out += alphabet[n & 63];
    }
    if (i < bytes.size()) {
        const bool two = i + 1 < bytes.size();
        const auto n = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (two ? static_cast<unsigned char>(bytes[i + 1]) << 8 : 0);
        out += alphabet[(n >> 18) & 63];
        out += alphabet[(n >> 12) & 63];
        out += two ? alphabet[(n >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0 || text.size() / 4 * 3 > max_token_bytes)
        return std::nullopt;
    const auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z')
            return c - 'A';
        if (c >= 'a' && c <= 'z')
            return c - 'a' + 26;
        if (c >= '0' && c <= '9')
            return c - '0' + 52;
        return c == '+' ? 62 : c == '/' ? 63 : -1;
    };
    std::string out;
    for (std::size_t i = 0; i < text.size(); i += 4) {
        const bool last = i + 4 == text.size();
        const int pad = last ? (text[i + 3] == '=') + (text[i + 2] == '=') : 0;
        if (pad == 1 && text[i + 2] == '=')
            return std::nullopt; // "x=y=" style
        int n = 0;
        for (int j = 0; j < 4 - pad; ++j) {
            const int v = value(text[i + j]);
            if (v < 0)
                return std::nullopt;
            n = (n << 6) | v;
        }
        if ((pad == 1 && (n & 0x3) != 0) || (pad == 2 && (n & 0xf) != 0))
            return std::nullopt; // bits past the end: not the canonical form
        n <<= 6 * pad;
        out += static_cast<char>((n >> 16) & 0xff);
        if (pad < 2)
            out += static_cast<char>((n >> 8) & 0xff);
        if (pad < 1)
            out += static_cast<char>(n & 0xff);
    }
    return out;
}

std::optional<std::string> user_of_principal(std::string_view principal, std::string_view realm) {
    const std::size_t at = principal.rfind('@');
    if (at == std::string_view::npos || at == 0 || realm.empty())
        return std::nullopt;
    const std::string_view name = principal.substr(0, at);
    if (lower(principal.substr(at + 1)) != lower(realm))
        return std::nullopt;
    // A service ("HTTP/host"), an enterprise name ("alice@upn\@REALM") or escapes: not a user.
    if (name.find_first_of("/@\\") != std::string_view::npos)
        return std::nullopt;
    for (char c : name)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            return std::nullopt;
    return std::string(name);
}

std::string realm_of_base_dn(std::string_view base_dn) {
    std::string realm;
    std::size_t start = 0;
    while (start <= base_dn.size()) {
        std::size_t comma = base_dn.find(',', start);
        if (comma == std::string_view::npos)
            comma = base_dn.size();
        std::string_view part = base_dn.substr(start, comma - start);
        while (!part.empty() && part.front() == ' ')
            part.remove_prefix(1);
        if (part.size() > 3 && lower(part.substr(0, 3)) == "dc=") {
            if (!realm.empty())
                realm += '.';
            for (char c : part.substr(3))
                realm += static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
        }
        start = comma + 1;
    }
    return realm;
}

Result<std::string> client_token(std::string_view host) {
    const std::string service = "HTTP@" + std::string(host);
    OM_uint32 minor = 0;
    gss_buffer_desc name_text{service.size(), const_cast<char*>(service.data())};
    gss_name_t target = GSS_C_NO_NAME;
    OM_uint32 major = gss_import_name(&minor, &name_text, GSS_C_NT_HOSTBASED_SERVICE, &target);
    if (GSS_ERROR(major))
        return fail(Errc::invalid_argument,
                    "Kerberos: bad service name " + service + ": " + describe(major, minor));
    gss_ctx_id_t context = GSS_C_NO_CONTEXT;
    gss_buffer_desc token = GSS_C_EMPTY_BUFFER;
    major = gss_init_sec_context(&minor, GSS_C_NO_CREDENTIAL, &context, target, &krb5_mechanism, 0,
                                 0, GSS_C_NO_CHANNEL_BINDINGS, GSS_C_NO_BUFFER, nullptr, &token,
                                 nullptr, nullptr);
    OM_uint32 ignored = 0;
    gss_release_name(&ignored, &target);
    if (context != GSS_C_NO_CONTEXT)
        gss_delete_sec_context(&ignored, &context, GSS_C_NO_BUFFER);
    if (GSS_ERROR(major)) {
        gss_release_buffer(&ignored, &token);
        return fail(Errc::not_found, "no Kerberos ticket for HTTP/" + std::string(host) + ": " +
                                         describe(major, minor, &krb5_mechanism));
    }
    std::string out =
        base64_encode(std::string_view(static_cast<const char*>(token.value), token.length));
    gss_release_buffer(&ignored, &token);
    return out;
}

struct Acceptor::State {
    gss_cred_id_t credential = GSS_C_NO_CREDENTIAL;
    std::mutex mutex;

    ~State() {
        OM_uint32 minor = 0;
        if (credential != GSS_C_NO_CREDENTIAL)
            gss_release_cred(&minor, &credential);
    }
};

Acceptor::Acceptor(std::unique_ptr<State> state) : state_(std::move(state)) {}
Acceptor::~Acceptor() = default;

Result<std::unique_ptr<Acceptor>> Acceptor::open(const fs::path& keytab) {
    if (::access(keytab.c_str(), R_OK) != 0)
        return fail(Errc::invalid_argument,
                    "kerberos_keytab " + keytab.string() +
                        " cannot be read: export the server's HTTP/ keys to it (docs/server.md)");
    auto state = std::make_unique<State>();
    // Acceptor credentials of every key in the keytab, for the Kerberos mechanism and for
    // SPNEGO around it (as browsers and curl send), without touching KRB5_KTNAME.
    const std::string name = "FILE:" + keytab.string();
    gss_key_value_element_desc element{"keytab", name.c_str()};
    gss_key_value_set_desc store{1, &element};
    OM_uint32 minor = 0;
    const OM_uint32 major =
        gss_acquire_cred_from(&minor, GSS_C_NO_NAME, GSS_C_INDEFINITE, GSS_C_NO_OID_SET,
                              GSS_C_ACCEPT, &store, &state->credential, nullptr, nullptr);
    if (GSS_ERROR(major))
        return fail(Errc::invalid_argument,
                    "kerberos_keytab " + keytab.string() + ": " + describe(major, minor));
    return std::unique_ptr<Acceptor>(new Acceptor(std::move(state)));
}

Result<Acceptor::Accepted> Acceptor::accept(std::string_view token) {
    const auto bytes = base64_decode(token);
    if (!bytes || bytes->empty())
        return fail(Errc::invalid_argument, "the Negotiate token is not base64");
    std::lock_guard lock(state_->mutex);
    OM_uint32 minor = 0;
    gss_ctx_id_t context = GSS_C_NO_CONTEXT;
    gss_buffer_desc input{bytes->size(), const_cast<char*>(bytes->data())};
    gss_buffer_desc output = GSS_C_EMPTY_BUFFER;
    gss_name_t client = GSS_C_NO_NAME;
    const OM_uint32 major = gss_accept_sec_context(&minor, &context, state_->credential, &input,
                                                   GSS_C_NO_CHANNEL_BINDINGS, &client, nullptr,
                                                   &output, nullptr, nullptr, nullptr);
    OM_uint32 ignored = 0;
    Accepted accepted;
    accepted.reply =
        base64_encode(std::string_view(static_cast<const char*>(output.value), output.length));
    gss_release_buffer(&ignored, &output);
    if (context != GSS_C_NO_CONTEXT)
        gss_delete_sec_context(&ignored, &context, GSS_C_NO_BUFFER);
    const auto done = [&] {
        if (client != GSS_C_NO_NAME)
            gss_release_name(&ignored, &client);
    };
    if (GSS_ERROR(major)) {
        done();
        return fail(Errc::crypto, "Kerberos refused the token: " + describe(major, minor));
    }
    if ((major & GSS_S_CONTINUE_NEEDED) != 0) {
        done();
        return fail(Errc::crypto, "the Negotiate token needs more than one round (NTLM?): only "
                                  "Kerberos is accepted");
    }
    gss_buffer_desc name = GSS_C_EMPTY_BUFFER;
    if (GSS_ERROR(gss_display_name(&minor, client, &name, nullptr))) {
        done();
        return fail(Errc::crypto, "Kerberos gave no client name");
    }
    accepted.principal.assign(static_cast<const char*>(name.value), name.length);
    gss_release_buffer(&ignored, &name);
    done();
    return accepted;
}

} // namespace heirloom::negotiate
