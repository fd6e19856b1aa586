#include "image_cli.hpp"

int main(int argc, char** argv) {
    return heirloom::trim::cli::run(argc, argv);
}
