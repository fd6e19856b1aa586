#pragma once

// Pushing a VHD to the server as a new image version: pack it locally with the image's key
// into a cache repository (so the next push reuses what this one packed, and gets deltas
// against it), ask the server which objects it lacks, upload only those, then hand over the
// manifest, which the server checks and signs. Interrupted anywhere, the same command resumes:
// the cache keeps the packed version and the server keeps every object it verified.

#include "heirloom/client/api_client.hpp"
#include "heirloom/common/log.hpp"
#include "heirloom/trim/progress.hpp"
#include "heirloom/trim/repository.hpp"

#include <atomic>

namespace heirloom::admin {

struct PushOptions {
    std::string image;
    fs::path vhd;
    fs::path cache;                      // local repository; keep it between pushes
    std::int64_t expires_in_seconds = 0; // 0 = the version never expires
    bool deltas = true;
    unsigned connections = 4; // uploads in parallel
    trim::Progress* progress = nullptr;
    // Set from another thread to stop the push at its next step (packing itself runs to the
    // end). Nothing is published then: objects already uploaded stay and the next push reuses
    // them, because the manifest, which makes a version visible, is always sent last.
    const std::atomic<bool>* cancel = nullptr;
};

struct PushResult {
    std::string image;
    std::uint64_t version = 0;
    std::uint64_t objects = 0;          // chunk and delta objects the version references
    std::uint64_t objects_uploaded = 0; // of which the server lacked
    std::uint64_t bytes_uploaded = 0;
    std::uint64_t manifest_bytes = 0;
    bool image_created = false;
    trim::PackResult pack;
    double seconds = 0;
};

Result<PushResult> push_image(client::ApiClient& api, const std::string& token,
                              const PushOptions& options);

} // namespace heirloom::admin
