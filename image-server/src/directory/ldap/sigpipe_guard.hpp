#pragma once

#include <csignal>

namespace heirloom::server::ldap_backend {

// Blocks SIGPIPE on the calling thread while libldap writes to sockets (liblber uses write(),
// which raises SIGPIPE when the directory has closed the connection), and discards a SIGPIPE
// raised meanwhile. Create one before an LdapSession and destroy it after.
class SigpipeGuard {
  public:
    SigpipeGuard();
    ~SigpipeGuard();
    SigpipeGuard(const SigpipeGuard&) = delete;
    SigpipeGuard& operator=(const SigpipeGuard&) = delete;

  private:
    sigset_t old_mask_{};
    bool was_pending_ = false;
};

} // namespace heirloom::server::ldap_backend
