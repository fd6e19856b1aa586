#pragma once

// A read-only NBD server (fixed newstyle handshake, simple replies) on a private unix socket:
// how QEMU reads a workspace's base image out of the encrypted store. Every block is verified
// and decrypted on read (trim::ImageReader); a block that fails verification is an I/O error
// in the guest, never wrong data. See docs/vm.md.

#include "heirloom/trim/image_reader.hpp"

#include <atomic>
#include <functional>
#include <memory>

namespace heirloom::agent {

struct NbdStats {
    std::uint64_t requests = 0;
    std::uint64_t bytes_read = 0;
    std::uint64_t errors = 0; // requests answered with an error
};

class NbdExport {
  public:
    // Called (from a connection thread) when a read fails verification or I/O.
    using ErrorHandler = std::function<void(const Error&)>;

    // Listens on socket_path (created with mode 0600; put it in a private folder) and serves
    // the reader to each client that connects, as the export named export_name.
    static Result<std::unique_ptr<NbdExport>> start(const fs::path& socket_path,
                                                    std::shared_ptr<trim::ImageReader> reader,
                                                    std::string export_name = "",
                                                    ErrorHandler on_error = {});
    // Stops accepting, disconnects clients, waits for their threads, removes the socket.
    ~NbdExport();
    NbdExport(const NbdExport&) = delete;
    NbdExport& operator=(const NbdExport&) = delete;

    const fs::path& socket_path() const;
    NbdStats stats() const;

  private:
    struct Impl;
    explicit NbdExport(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// Limits a client cannot exceed (the connection is closed, or the request refused).
inline constexpr std::uint32_t nbd_max_request = 32u << 20;  // bytes per read
inline constexpr std::uint32_t nbd_max_option_length = 4096; // bytes of option data
inline constexpr unsigned nbd_max_options = 32;              // options before transmission
inline constexpr int nbd_handshake_timeout_ms = 10'000;      // to finish the handshake

} // namespace heirloom::agent
