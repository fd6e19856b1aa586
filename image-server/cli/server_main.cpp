#include "server_cli.hpp"

int main(int argc, char** argv) {
    return heirloom::server::cli::run(argc, argv);
}
