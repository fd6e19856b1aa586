#pragma once

// A real OpenLDAP directory for tests: the demo directory of installer/demo-directory.sh (its
// users, groups and passwords are in installer/demo-directory/README.md), started in a private
// temporary folder on a free port, with a fresh test certificate for StartTLS and ldaps.
//
// Usage:
//     Slapd slapd;
//     HL_SKIP_UNLESS_RUNNING(slapd);
//     auto directory = open_ldap_directory(slapd.config());

#include "heirloom/server/directory.hpp"
#include "support/http_servers.hpp"

#include <string>
#include <sys/types.h>

namespace heirloom::test {

class Slapd {
  public:
    // Starts the directory (a few hundred milliseconds); see state() for the outcome.
    Slapd();
    // Stops the directory before its folder goes away.
    ~Slapd();
    Slapd(const Slapd&) = delete;
    Slapd& operator=(const Slapd&) = delete;

    // running, missing (slapd, ldap-utils or openssl not installed: skip) or failed.
    ServerProcess::State state() const { return state_; }
    // Why the directory is not running, with the end of its log when it failed.
    const std::string& problem() const { return problem_; }

    int port() const { return port_; }
    std::string uri() const;       // "ldap://127.0.0.1:PORT" (plain and StartTLS)
    std::string ldaps_uri() const; // "ldaps://127.0.0.1:PORT+1"
    fs::path ca_file() const;      // the certificate to trust for both
    std::string base_dn() const { return "dc=heirloom,dc=test"; }

    // The image server's view: StartTLS on uri(), the service account, users under ou=people
    // and groups under ou=groups, automatic membership, a 5 s timeout.
    server::DirectoryConfig config() const;

    // Adds or changes entries as the rootDN (ldapmodify -a, so plain entries are added).
    // Returns why it failed, or an empty string when done.
    std::string modify(const std::string& ldif);

    pid_t pid() const { return pid_; }
    // Freezes slapd with SIGSTOP: its port still accepts connections, nothing answers.
    void pause();
    // Lets a paused slapd run again (SIGCONT).
    void resume();
    // Stops slapd (the directory is then down: connections are refused). Safe to call twice.
    void stop();

  private:
    TempDir dir_;
    ServerProcess::State state_ = ServerProcess::State::failed;
    std::string problem_;
    int port_ = 0;
    pid_t pid_ = -1;
};

} // namespace heirloom::test
