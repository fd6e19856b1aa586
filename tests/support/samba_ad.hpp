#pragma once

// A real Active Directory domain controller for tests: Samba, provisioned by
// tests/support/samba-ad.sh (its users, groups, passwords and account states are listed at the
// top of that script). The domain is provisioned once into a template folder under the build
// folder (about a minute the first time) and copied for each test; each copy runs on a
// loopback address of its own (127.88.x.y: AD needs its fixed ports 389, 636 and 88), with a
// fresh test CA and a certificate for that address, so it runs beside other tests.
//
// Usage:
//     SambaAd ad;
//     HL_SKIP_UNLESS_RUNNING(ad);
//     auto directory = open_ldap_directory(ad.config());

#include "heirloom/server/directory.hpp"
#include "support/http_servers.hpp"

#include <string>

namespace heirloom::test {

class SambaAd {
  public:
    // Starts the domain controller (a second or two, once the template exists).
    SambaAd();
    // Stops it before its folder goes away.
    ~SambaAd();
    SambaAd(const SambaAd&) = delete;
    SambaAd& operator=(const SambaAd&) = delete;

    // running, missing (samba or samba-ad-provision not installed: skip) or failed.
    ServerProcess::State state() const { return state_; }
    const std::string& problem() const { return problem_; }

    const std::string& address() const { return address_; } // "127.88.X.Y"
    std::string uri() const;                                // "ldap://ADDRESS" (StartTLS)
    std::string ldaps_uri() const;                          // "ldaps://ADDRESS"
    fs::path ca_file() const;   // the test CA that signed the DC's certificate
    fs::path krb5_conf() const; // a krb5.conf naming this DC as the realm's KDC
    std::string base_dn() const { return "DC=heirloom,DC=test"; }
    std::string realm() const { return "HEIRLOOM.TEST"; }

    // The image server's view: the active-directory profile, StartTLS on uri(), the service
    // account heirloom-svc, a 10 s timeout.
    server::DirectoryConfig config() const;

    // Runs samba-tool against the DC's database as Administrator over LDAPS, e.g.
    // {"user", "disable", "alice"}. Returns why it failed, or an empty string when done.
    std::string samba_tool(const std::vector<std::string>& arguments);

    // Exports the keys of the server's service principal HTTP/127.0.0.1@HEIRLOOM.TEST (held by
    // heirloom-svc) to file. Returns why it failed, or an empty string when done.
    std::string export_keytab(const fs::path& file);

    // Gets a ticket for user (kinit) into the credential cache ccache, with krb5_conf().
    // Returns why it failed, or an empty string when done.
    std::string kinit(const std::string& user, const std::string& password, const fs::path& ccache);

    // Stops the DC (connections are then refused). Safe to call twice.
    void stop();

  private:
    TempDir dir_;
    ServerProcess::State state_ = ServerProcess::State::failed;
    std::string problem_;
    std::string address_;
    fs::path dc_; // the running copy of the domain
    bool started_ = false;
};

} // namespace heirloom::test
