#pragma once

// Constructors of the object source backends, used by open_source (open.cpp). Internal to
// trim-transfer.

#include "heirloom/common/file.hpp"
#include "heirloom/trim/source.hpp"

#include <memory>
#include <string_view>

namespace heirloom::trim::detail {

// A source reading objects from a folder; root must be an existing directory.
std::unique_ptr<ObjectSource> make_folder_source(const fs::path& root);

// A source reading objects from an http:// or https:// URL, optionally with a path prefix.
Result<std::unique_ptr<ObjectSource>> make_http_source(std::string_view url,
                                                       const SourceOptions& options);

} // namespace heirloom::trim::detail
