// heirloom-bench-nbd-export --store DIR --image NAME --keys DIR --socket PATH [--version N]
//
// Serves one stored image version over the agent's decrypting NBD export (the one a workspace
// VM boots from) until SIGTERM or SIGINT, so bench/run-vm-bench.sh can read it with
// `qemu-img bench` next to the same disk as a plaintext file. Prints "ready" once serving,
// and the export's counters at exit.

#include "heirloom/agent/nbd_export.hpp"

#include "heirloom/common/crypto.hpp"
#include "heirloom/trim/keys.hpp"
#include "heirloom/trim/store.hpp"

#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

using namespace heirloom;

namespace {

int usage() {
    std::fprintf(stderr, "usage: heirloom-bench-nbd-export --store DIR --image NAME --keys DIR "
                         "--socket PATH [--version N]\n");
    return 2;
}

int failed(const Error& e) {
    std::fprintf(stderr, "heirloom-bench-nbd-export: %s\n", e.message.c_str());
    return 1;
}

} // namespace

int main(int argc, char** argv) {
    std::string store, image, keys_dir, socket;
    std::optional<std::uint64_t> version;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string k = argv[i], v = argv[i + 1];
        if (k == "--store")
            store = v;
        else if (k == "--image")
            image = v;
        else if (k == "--keys")
            keys_dir = v;
        else if (k == "--socket")
            socket = v;
        else if (k == "--version")
            version = std::stoull(v);
        else
            return usage();
    }
    if (store.empty() || image.empty() || keys_dir.empty() || socket.empty() || argc % 2 == 0)
        return usage();
    if (auto ok = crypto::init(); !ok)
        return failed(ok.error());
    auto keys = trim::load_keys(keys_dir, trim::NeedSigningKey::no);
    if (!keys)
        return failed(keys.error());
    if (!version) {
        auto current = trim::read_current_version(store, image);
        if (!current)
            return failed(current.error());
        if (!*current)
            return failed(Error{Errc::not_found, "no version of " + image + " in " + store});
        version = **current;
    }
    auto manifest = trim::read_stored_manifest(store, image, *version, keys->signing_public);
    if (!manifest)
        return failed(manifest.error());
    auto reader = trim::ImageReader::open(store, std::move(*manifest), keys->family);
    if (!reader)
        return failed(reader.error());
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    auto exp = agent::NbdExport::start(
        socket, std::make_shared<trim::ImageReader>(std::move(*reader)), image,
        [](const Error& e) { std::fprintf(stderr, "read error: %s\n", e.message.c_str()); });
    if (!exp)
        return failed(exp.error());
    std::printf("ready\n");
    std::fflush(stdout);
    int sig = 0;
    sigwait(&signals, &sig);
    auto stats = (*exp)->stats();
    std::printf("{\"requests\": %llu, \"bytes_read\": %llu, \"errors\": %llu}\n",
                static_cast<unsigned long long>(stats.requests),
                static_cast<unsigned long long>(stats.bytes_read),
                static_cast<unsigned long long>(stats.errors));
    return 0;
}
