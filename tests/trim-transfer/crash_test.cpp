// Kills `heirloom-image sync` with SIGKILL at many points of an update and checks that the
// store always holds the old or the new version, that verify passes, and that the next sync
// finishes the job.

#include "heirloom/trim/image_ops.hpp"
#include "heirloom/trim/repository.hpp"
#include "heirloom/trim/store.hpp"
#include "support/images.hpp"
#include "support/support.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <fcntl.h>
#include <set>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace heirloom;
using namespace heirloom::trim;

namespace {

pid_t spawn(const std::vector<std::string>& argv) {
    pid_t pid = ::fork();
    if (pid == 0) {
        int devnull = ::open("/dev/null", O_WRONLY);
        ::dup2(devnull, 1);
        ::dup2(devnull, 2);
        std::vector<char*> args;
        for (const auto& a : argv)
            args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    return pid;
}

std::uint64_t current_version(const fs::path& store) {
    auto s = Store::open(store);
    REQUIRE(s);
    auto v = s->current_version("payroll");
    REQUIRE(v);
    REQUIRE(v->has_value());
    return **v;
}

} // namespace

TEST_CASE("a sync killed at any point leaves the old or the new version", "[sync][crash]") {
    test::TempDir dir;
    KeySet keys = test::make_keys(dir / "keys");
    auto disk = test::make_disk(96ull << 20, 400, 21);
    Bytes v1 = disk.content;
    test::write_vhd(dir / "v1.vhd", disk.content, 1);
    REQUIRE(
        pack_image(dir / "v1.vhd", dir / "repo", keys, PackOptions{"payroll", {}, 0, 2, nullptr}));
    test::rewrite_files(disk, 120, 3);
    Bytes v2 = disk.content;
    test::write_vhd(dir / "v2.vhd", disk.content, 2);

    const std::string bin = (test::bin_dir() / "heirloom-image").string();
    std::vector<std::string> sync = {bin,       "sync",
                                     "--from",  (dir / "repo").string(),
                                     "--name",  "payroll",
                                     "--store", (dir / "store").string(),
                                     "--keys",  (dir / "keys").string(),
                                     "--quiet", "--workers",
                                     "2",       "--checkpoint-mb",
                                     "1"};
    REQUIRE(test::run(sync).exit_code == 0);
    REQUIRE(
        pack_image(dir / "v2.vhd", dir / "repo", keys, PackOptions{"payroll", {}, 0, 2, nullptr}));

    // Time one full update in a scratch copy, then kill real updates across that span.
    fs::copy(dir / "store", dir / "timing", fs::copy_options::recursive);
    auto timing = sync;
    timing[7] = (dir / "timing").string();
    auto t0 = std::chrono::steady_clock::now();
    REQUIRE(test::run(timing).exit_code == 0);
    auto span = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - t0);
    fs::remove_all(dir / "timing");

    auto count_chunks = [&] {
        std::size_t n = 0;
        for (const auto& e : fs::recursive_directory_iterator(dir / "store" / "chunks"))
            n += e.is_regular_file() ? 1 : 0;
        return n;
    };
    const std::size_t chunks_before = count_chunks();
    bool kept_progress = false;
    int killed_midway = 0;
    std::set<std::uint64_t> seen;
    constexpr int attempts = 16;
    for (int i = 0; i < attempts; ++i) {
        pid_t pid = spawn(sync);
        std::this_thread::sleep_for(span * i / attempts);
        ::kill(pid, SIGKILL);
        int status = 0;
        ::waitpid(pid, &status, 0);
        if (WIFSIGNALED(status))
            ++killed_midway;
        std::uint64_t v = current_version(dir / "store");
        seen.insert(v);
        REQUIRE((v == 1 || v == 2));
        auto check = verify_image(dir / "store", "payroll", std::nullopt, keys, nullptr);
        REQUIRE(check);
        INFO("after kill " << i << " at version " << v);
        CHECK(check->problems.empty());
        if (v == 2)
            break;
        // Chunks that reached a checkpoint survive the kill: the next run resumes from them.
        kept_progress |= count_chunks() > chunks_before;
    }
    CHECK(killed_midway > 0);
    CHECK(kept_progress);
    // Whatever happened, the next sync completes, and the result is exactly v2.
    REQUIRE(test::run(sync).exit_code == 0);
    CHECK(current_version(dir / "store") == 2);
    REQUIRE(export_image(dir / "store", "payroll", std::nullopt, dir / "out.vhd", keys, nullptr));
    CHECK(test::read_vhd(dir / "out.vhd") == v2);
}
