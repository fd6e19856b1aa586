#define CATCH_CONFIG_RUNNER
#include "heirloom/common/crypto.hpp"

#include <catch2/catch.hpp>

int main(int argc, char* argv[]) {
    if (!heirloom::crypto::init())
        return 2;
    return Catch::Session().run(argc, argv);
}
