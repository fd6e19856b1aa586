#include "admin_cli.hpp"

int main(int argc, char** argv) {
    return heirloom::admin::run(argc, argv);
}
