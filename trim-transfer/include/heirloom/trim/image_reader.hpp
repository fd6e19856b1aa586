#pragma once

// Random-access reads of one stored image version, straight from its encrypted chunks: each
// block is authenticated, decrypted and checked against its tag when it is read, so a VM can
// boot from the store without a plaintext copy of the disk ever touching the disk.

#include "heirloom/trim/chunk.hpp"
#include "heirloom/trim/keys.hpp"
#include "heirloom/trim/manifest.hpp"

#include <memory>

namespace heirloom::trim {

class ImageReader {
  public:
    // Reads the version described by a verified manifest from the chunk files of a store
    // folder. Takes no store lock: chunk files are immutable; the caller keeps the version
    // from being pruned while it reads.
    static Result<ImageReader> open(const fs::path& store_dir, Manifest manifest,
                                    const FamilyKeys& keys);
    ImageReader(ImageReader&&) noexcept;
    ImageReader& operator=(ImageReader&&) noexcept;
    ~ImageReader();

    std::uint64_t size() const;
    std::uint64_t version() const;

    // Fills out with the virtual disk's bytes at offset (zero where the image has no data).
    // Fails, writing nothing it could not verify, when a chunk is missing, damaged or
    // tampered with, or when the range is past the end. Thread-safe.
    Status read(std::uint64_t offset, MutableByteView out);

  private:
    struct Impl;
    explicit ImageReader(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

} // namespace heirloom::trim
