// heirloom-open: the http/https link handler (docs/shell-integration.md).

#include "heirloom/shell/open_url.hpp"

int main(int argc, char** argv) {
    return heirloom::shell::open_main(argc, argv);
}
