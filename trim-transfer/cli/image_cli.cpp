#include "image_cli.hpp"

#include "heirloom/common/crypto.hpp"
#include "heirloom/trim/keys.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace heirloom::trim::cli {

int run(int argc, char** argv) {
    CLI::App app{"heirloom-image: pack VM images into encrypted, signed chunks and sync them "
                 "by block deltas"};
    app.require_subcommand(1);

    std::string keys_out;
    auto* keygen = app.add_subcommand("keygen", "Create a signing key pair and image-family "
                                                "secret for standalone use");
    keygen->add_option("--out", keys_out, "Folder to create the keys in")->required();

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    if (!crypto::init()) {
        fmt::print(stderr, "heirloom-image: cannot initialise cryptography\n");
        return 1;
    }
    if (keygen->parsed()) {
        if (auto ok = generate_keys(keys_out); !ok) {
            fmt::print(stderr, "heirloom-image: keygen: {}\n", ok.error().message);
            return 1;
        }
        fmt::print("created keys in {}\n", keys_out);
    }
    return 0;
}

} // namespace heirloom::trim::cli
