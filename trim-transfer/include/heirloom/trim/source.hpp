#pragma once

// Where image objects (manifests, chunks) come from: a repository folder, a removable-media
// folder, or a plain static HTTP(S) server serving a repository. Objects are addressed by
// their path inside the repository, e.g. "images/payroll/latest" or "chunks/ab/ab12…".

#include "heirloom/common/bytes.hpp"

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace heirloom::trim {

struct ByteRange {
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
};

struct TransferStats {
    std::uint64_t bytes = 0;    // bytes received (HTTP bodies, including multipart framing)
    std::uint64_t requests = 0; // requests made (or files opened, for folders)
};

struct SourceOptions {
    std::string ca_file;      // HTTPS: trust these CAs instead of the system's
    int timeout_seconds = 30; // connect and read timeout per request
    int max_connections = 8;  // HTTP connections kept open for parallel requests
    std::string bearer_token; // sent as "Authorization: Bearer" (a Heirloom server's agent token)
    std::uint64_t max_bytes_per_second = 0; // HTTP bodies, all requests together; 0: no limit
};

// A read-only object source. All member functions are thread-safe.
class ObjectSource {
  public:
    virtual ~ObjectSource() = default;

    // "folder /media/usb" or "https://images.example.org/repo", for messages.
    virtual std::string describe() const = 0;

    // Reads a whole object. Errc::not_found when it does not exist; Errc::corrupt when it is
    // larger than max_size.
    virtual Result<Bytes> get(std::string_view path, std::uint64_t max_size) = 0;

    // Reads several ranges of one object, returning one buffer per range in the same order.
    // Backends that cannot fetch ranges (a server that ignores Range) read the whole object and
    // slice it; a range past the end of the object is an Errc::corrupt error.
    virtual Result<std::vector<Bytes>> get_ranges(std::string_view path,
                                                  std::span<const ByteRange> ranges) = 0;

    virtual TransferStats stats() const = 0;
};

// Opens "http://…", "https://…" or a folder path. Object paths are checked: no "..", no
// absolute paths, only [A-Za-z0-9._/-].
Result<std::unique_ptr<ObjectSource>> open_source(std::string_view spec,
                                                  const SourceOptions& options = {});

// True when path is a safe relative object path.
bool valid_object_path(std::string_view path);

} // namespace heirloom::trim
