#include "server_init.hpp"

#include "heirloom/client/password.hpp"
#include "heirloom/common/crypto.hpp"
#include "heirloom/server/directory.hpp"
#include "heirloom/server/image_store.hpp"
#include "heirloom/server/transport.hpp"

#include <fmt/format.h>
#include <iostream>
#include <memory>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

namespace heirloom::server::cli {
namespace {

// One line of init's report: what was done or found, aligned for reading.
void say(std::FILE* out, std::string_view what, const std::string& text) {
    std::fprintf(out, "  %-11s %s\n", std::string(what).c_str(), text.c_str());
}

// Asks one question on stdout and reads the answer from stdin; an empty answer keeps the
// default. End of input keeps the default too, so a short answer file is not an error.
std::string ask(const std::string& question, const std::string& fallback) {
    std::printf("%s%s: ", question.c_str(),
                fallback.empty() ? "" : (" [" + fallback + "]").c_str());
    std::fflush(stdout);
    std::string answer;
    if (!std::getline(std::cin, answer))
        return fallback;
    while (!answer.empty() && (answer.back() == '\r' || answer.back() == ' '))
        answer.pop_back();
    return answer.empty() ? fallback : answer;
}

std::string this_host_name() {
    char name[256] = {};
    if (gethostname(name, sizeof name - 1) != 0 || !name[0])
        return "localhost";
    return name;
}

// A host name or address fit for a certificate: letters, digits, '.', '-' and ':' only.
bool valid_host(std::string_view host) {
    if (host.empty() || host.size() > 253)
        return false;
    for (char ch : host)
        if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '-' && ch != ':')
            return false;
    return true;
}

bool is_address(std::string_view host) {
    return host.find(':') != std::string_view::npos ||
           host.find_first_not_of("0123456789.") == std::string_view::npos;
}

template <typename T, void (*Free)(T*)> struct OpenSslFree {
    void operator()(T* p) const { Free(p); }
};
using X509Ptr = std::unique_ptr<X509, OpenSslFree<X509, X509_free>>;
using KeyPtr = std::unique_ptr<EVP_PKEY, OpenSslFree<EVP_PKEY, EVP_PKEY_free>>;
using BioPtr = std::unique_ptr<BIO, OpenSslFree<BIO, BIO_free_all>>;

Status add_extension(X509* cert, int nid, const std::string& value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    if (!ext)
        return fail(Errc::crypto, "certificate extension " + value + " refused");
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    if (!ok)
        return fail(Errc::crypto, "certificate extension " + value + " not added");
    return {};
}

Result<std::string> pem_of(const auto& write) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (!bio || !write(bio.get()))
        return fail(Errc::crypto, "writing PEM failed");
    char* data = nullptr;
    long size = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(size));
}

// A self-signed ECDSA P-256 certificate for host, valid for two years; agents trust it with
// `heirloom login --ca-file`. The key is written owner-only.
Status make_self_signed(const std::string& host, const fs::path& cert_file,
                        const fs::path& key_file) {
    KeyPtr key(EVP_EC_gen("P-256"));
    X509Ptr cert(X509_new());
    if (!key || !cert)
        return fail(Errc::crypto, "cannot make a key pair");
    X509_set_version(cert.get(), X509_VERSION_3);
    std::array<std::uint8_t, 16> serial{};
    crypto::random_bytes(serial);
    serial[0] &= 0x7f;
    BIGNUM* bn = BN_bin2bn(serial.data(), static_cast<int>(serial.size()), nullptr);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 730L * 86400);
    X509_set_pubkey(cert.get(), key.get());
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("Heirloom server"), -1, -1,
                               0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(host.c_str()), -1, -1, 0);
    X509_set_issuer_name(cert.get(), name);
    std::string san = (is_address(host) ? "IP:" : "DNS:") + host;
    HL_TRY(add_extension(cert.get(), NID_subject_alt_name, san));
    HL_TRY(add_extension(cert.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
    HL_TRY(add_extension(cert.get(), NID_key_usage, "critical,digitalSignature,keyCertSign"));
    HL_TRY(add_extension(cert.get(), NID_ext_key_usage, "serverAuth"));
    HL_TRY(add_extension(cert.get(), NID_subject_key_identifier, "hash"));
    if (!X509_sign(cert.get(), key.get(), EVP_sha256()))
        return fail(Errc::crypto, "cannot sign the certificate");
    std::string key_pem = HL_TRY(pem_of([&](BIO* b) {
        return PEM_write_bio_PrivateKey(b, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
    }));
    std::string cert_pem =
        HL_TRY(pem_of([&](BIO* b) { return PEM_write_bio_X509(b, cert.get()); }));
    HL_TRY(write_file_atomic(key_file, as_bytes(key_pem), Durability::fsync, FileMode::owner_only));
    crypto::secure_wipe(key_pem);
    HL_TRY(write_file_atomic(cert_file, as_bytes(cert_pem)));
    return {};
}

// Files init creates in the data folder belong to the folder's owner (the service user the
// package made), not to root running init.
struct Ownership {
    bool change = false;
    uid_t uid = 0;
    gid_t gid = 0;

    static Ownership of(const fs::path& dir) {
        struct stat st {};
        if (geteuid() != 0 || ::stat(dir.c_str(), &st) != 0 || st.st_uid == 0)
            return {};
        return {true, st.st_uid, st.st_gid};
    }
    Status apply(const fs::path& path) const {
        if (change && ::lchown(path.c_str(), uid, gid) != 0)
            return fail(Errc::io, "cannot give " + path.string() + " to the service user");
        return {};
    }
};

struct Answers {
    ServerConfig config;
    std::string self_signed_host;
};

// Fills what flags left unset from questions, or refuses when there is no one to ask.
Result<Answers> gather(const Overrides& overrides, const InitOptions& o) {
    Answers a;
    ServerConfig& c = a.config;
    // Run again with --force, init keeps every setting of the file that no flag changes.
    if (o.force && fs::exists(o.config_out))
        if (auto existing = load_config(o.config_out))
            c = std::move(*existing);
    const std::string kept_bind_dn = c.directory.bind_dn;
    HL_TRY(apply_overrides(c, overrides));
    // Another service account needs its own password: asked for again below.
    if (c.directory.bind_dn != kept_bind_dn && overrides.ldap_password_file.empty())
        c.directory_password_file.clear();
    a.self_signed_host = o.self_signed_host;
    bool asking = o.ask == Ask::always || (o.ask == Ask::automatic && isatty(STDIN_FILENO));
    bool tls_given = c.plain_http || (!c.tls_certificate.empty() && !c.tls_key.empty());
    if (asking) {
        std::printf("Setting up heirloom-server. Press Enter to keep the value in brackets.\n");
        if (overrides.listen.empty())
            HL_TRY(parse_listen(ask("Address to listen on (HOST:PORT)", "0.0.0.0:8443"),
                                c.listen_host, c.listen_port));
        if (overrides.data_dir.empty())
            c.data_dir = ask("Data folder (keys, images, metadata)", c.data_dir.string());
        if (c.directory.uri.empty()) {
            c.directory.uri = ask("Directory URI (ldap://HOST or ldaps://HOST)", "");
            if (c.directory.uri.starts_with("ldaps://"))
                c.directory.tls = DirectoryTls::ldaps;
        }
        if (c.directory.base_dn.empty())
            c.directory.base_dn = ask("Directory base DN (e.g. dc=example,dc=org)", "");
        if (overrides.ldap_bind_dn.empty())
            c.directory.bind_dn = ask("Service account DN (empty: anonymous searches)", "");
        if (overrides.admin_group.empty())
            c.admin_group = ask("Directory group of Heirloom admins", c.admin_group);
        if (!tls_given && a.self_signed_host.empty())
            a.self_signed_host =
                ask("No TLS certificate given: make a self-signed one for which host name",
                    this_host_name());
    }
    if (c.directory.uri.empty() || c.directory.base_dn.empty())
        return fail(Errc::invalid_argument,
                    "the directory is not set: give --ldap-uri and --ldap-base-dn (or run init "
                    "on a terminal to be asked)");
    if (!tls_given && a.self_signed_host.empty())
        return fail(Errc::invalid_argument,
                    "no TLS: give --tls-cert and --tls-key, or --self-signed HOST for a "
                    "self-signed certificate, or --plain-http behind a TLS proxy on loopback");
    if (!a.self_signed_host.empty() && !valid_host(a.self_signed_host))
        return fail(Errc::invalid_argument,
                    "'" + a.self_signed_host + "' is not a host name or address for a certificate");
    return a;
}

// Keys, TLS files and the directory password, in the data folder; prints what it did.
Status prepare_data(Answers& a, std::FILE* out) {
    ServerConfig& c = a.config;
    HL_TRY(make_dirs(c.data_dir));
    Ownership owner = Ownership::of(c.data_dir);
    bool had_keys = fs::exists(c.data_dir / "keys" / "signing.key");
    auto keys = HL_TRY(load_or_create_server_keys(c.data_dir));
    for (const char* name : {"keys", "keys/signing.key", "keys/signing.pub"})
        HL_TRY(owner.apply(c.data_dir / name));
    say(out, "keys",
        fmt::format("{} {} (signing key {}...)", had_keys ? "kept" : "created",
                    (c.data_dir / "keys").string(), to_hex(keys.public_key).substr(0, 16)));
    crypto::secure_wipe(keys.secret);

    if (!a.self_signed_host.empty()) {
        fs::path dir = c.data_dir / "tls";
        c.tls_certificate = dir / "server.crt";
        c.tls_key = dir / "server.key";
        bool had = fs::exists(c.tls_certificate) && fs::exists(c.tls_key);
        if (!had) {
            HL_TRY(make_dirs(dir));
            HL_TRY(make_self_signed(a.self_signed_host, c.tls_certificate, c.tls_key));
            for (const auto& p : {dir, c.tls_certificate, c.tls_key})
                HL_TRY(owner.apply(p));
        }
        say(out, "tls",
            fmt::format("{} self-signed certificate {} (agents: heirloom login --ca-file it)",
                        had ? "kept" : "created", c.tls_certificate.string()));
    }
    if (!c.plain_http) {
        HL_TRY_CTX(TlsContext::load(c.tls_certificate, c.tls_key), "TLS");
        if (a.self_signed_host.empty())
            say(out, "tls", "certificate " + c.tls_certificate.string() + " and its key load");
    }

    if (!c.directory.bind_dn.empty() && c.directory_password_file.empty()) {
        std::string password = HL_TRY_CTX(
            client::read_password("Password of " + c.directory.bind_dn + ": "), "directory");
        c.directory_password_file = c.data_dir / "directory.password";
        HL_TRY(write_file_atomic(c.directory_password_file, as_bytes(password + "\n"),
                                 Durability::fsync, FileMode::owner_only));
        crypto::secure_wipe(password);
        HL_TRY(owner.apply(c.directory_password_file));
        say(out, "password", "kept in " + c.directory_password_file.string() + " (owner only)");
    }
    return {};
}

// True when a configuration file exists and names a directory: someone set it up, so init does
// not overwrite it without --force. The package's default (no directory yet) may be replaced.
bool configured(const fs::path& file) {
    if (!fs::exists(file))
        return false;
    auto existing = load_config(file);
    return !existing || !existing->directory.uri.empty();
}

} // namespace

void add_init_flags(CLI::App& app, InitOptions& o) {
    app.add_option("-c,--config", o.config_out,
                   "configuration file to write (default /etc/heirloom/server.json)");
    app.add_option("--self-signed", o.self_signed_host,
                   "make a self-signed TLS certificate for this host name or address (kept in "
                   "DATA/tls; an existing one is reused)");
    app.add_option("--check-user", o.check_user,
                   "also look this user up in the directory, with their groups");
    app.add_flag("--force", o.force, "replace an existing configuration file");
    app.add_flag_callback(
        "--ask", [&o] { o.ask = Ask::always; },
        "ask for every setting not given as a flag, even without a terminal "
        "(answers on stdin, one per line)");
    app.add_flag_callback(
        "--no-ask", [&o] { o.ask = Ask::never; },
        "never ask: flags only (the default without a terminal)");
}

bool report_directory(const ServerConfig& config, const std::string& user, std::FILE* out) {
    auto directory = open_ldap_directory(config.directory);
    if (!directory) {
        say(out, "directory", "FAILED: " + directory.error().message);
        return false;
    }
    say(out, "directory",
        (*directory)->describe() + " (" + std::string(to_string(config.directory.type)) + ")");
    constexpr std::size_t enough = 10000;
    auto users = (*directory)->search_users("", enough);
    if (!users) {
        say(out, "users", "FAILED to search: " + users.error().message);
        return false;
    }
    say(out, "users",
        fmt::format("{}{} found{}", users->size(), users->size() >= enough ? " or more" : "",
                    users->empty() ? " (check user_base, user_attribute and the user filter)"
                                   : ""));
    auto groups = (*directory)->search_groups("", enough);
    if (!groups) {
        say(out, "groups", "FAILED to search: " + groups.error().message);
        return false;
    }
    bool admin_found = false;
    for (const auto& g : *groups)
        admin_found = admin_found || same_group_name(config.directory, g.name, config.admin_group);
    say(out, "groups",
        fmt::format("{} found; admin group {}: {}", groups->size(), config.admin_group,
                    admin_found ? "found" : "NOT FOUND (create it, or give --admin-group)"));
    if (user.empty())
        return admin_found;
    auto found = (*directory)->lookup(user);
    if (!found) {
        say(out, "user", user + ": " + found.error().message);
        return false;
    }
    std::string list;
    for (const auto& g : found->groups)
        list += (list.empty() ? "" : ", ") + g;
    say(out, "user",
        fmt::format("{} ({}): groups {}", found->name, found->dn, list.empty() ? "(none)" : list));
    return admin_found;
}

int init(const Overrides& overrides, const InitOptions& o) {
    if (configured(o.config_out) && !o.force) {
        std::fprintf(stderr,
                     "heirloom-server init: %s already exists; give --force to write it anew "
                     "(keys, certificates and images in the data folder are kept either way)\n",
                     o.config_out.c_str());
        return 2;
    }
    if (auto ok = crypto::init(); !ok) {
        std::fprintf(stderr, "heirloom-server init: %s\n", ok.error().message.c_str());
        return 1;
    }
    auto answers = gather(overrides, o);
    if (!answers) {
        std::fprintf(stderr, "heirloom-server init: %s\n", answers.error().message.c_str());
        return 2;
    }
    ServerConfig& c = answers->config;
    std::printf("\nheirloom-server init\n");
    if (auto ok = prepare_data(*answers, stdout); !ok) {
        std::fprintf(stderr, "heirloom-server init: %s\n", ok.error().message.c_str());
        return 1;
    }
    // The same check the server makes at start: the password file read, the settings whole.
    ServerConfig checked = c;
    if (auto ok = finish_config(checked); !ok) {
        std::fprintf(stderr, "heirloom-server init: %s\n", ok.error().message.c_str());
        return 2;
    }
    bool directory_ok = report_directory(checked, o.check_user, stdout);
    crypto::secure_wipe(checked.directory.bind_password);

    std::string text = config_to_json(c).dump(2) + "\n";
    if (auto made = make_dirs(o.config_out.parent_path().empty() ? fs::path(".")
                                                                 : o.config_out.parent_path());
        !made) {
        std::fprintf(stderr, "heirloom-server init: %s\n", made.error().message.c_str());
        return 1;
    }
    if (auto ok = write_file_atomic(o.config_out, as_bytes(text)); !ok) {
        std::fprintf(stderr, "heirloom-server init: %s\n", ok.error().message.c_str());
        return 1;
    }
    say(stdout, "config", "written " + o.config_out.string());
    if (!directory_ok) {
        std::printf("\nThe directory check failed (above). Correct the directory settings in "
                    "%s, then check again with:\n  heirloom-server check-directory --config %s\n",
                    o.config_out.c_str(), o.config_out.c_str());
        return 1;
    }
    std::printf("\nReady. Start the server with:\n  systemctl enable --now heirloom-server   "
                "(from the package)\n  heirloom-server serve --config %s   (by hand)\nThen "
                "an admin of group %s logs in: heirloom-admin --server https://%s:%d ...\n",
                o.config_out.c_str(), c.admin_group.c_str(),
                answers->self_signed_host.empty() ? "SERVER" : answers->self_signed_host.c_str(),
                c.listen_port);
    return 0;
}

} // namespace heirloom::server::cli
