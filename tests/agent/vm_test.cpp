// The workspace VM without a guest: real QEMU on the decrypting NBD export with an encrypted
// overlay, driven over QMP. (Booting a real guest is in tests/integration/vm_test.cpp.)

#include "heirloom/agent/nbd_export.hpp"
#include "heirloom/agent/vm.hpp"
#include "heirloom/trim/repository.hpp"
#include "heirloom/trim/store.hpp"
#include "heirloom/trim/sync.hpp"
#include "support/images.hpp"
#include "support/support.hpp"

#include <catch2/catch.hpp>
#include <csignal>
#include <fstream>
#include <thread>

using namespace heirloom;
using namespace heirloom::agent;
using namespace std::chrono_literals;

namespace {

constexpr std::uint64_t disk_size = 8ull << 20;

struct Workspace {
    test::TempDir dir;
    trim::KeySet keys = test::make_keys(dir / "keys");
    test::SyntheticDisk disk = test::make_disk(disk_size, 10, 5);
    std::unique_ptr<NbdExport> exp;

    Workspace() {
        test::write_vhd(dir / "in.vhd", disk.content, 1);
        REQUIRE(trim::pack_image(dir / "in.vhd", dir / "repo", keys,
                                 trim::PackOptions{"crm", {}, 0, 2, nullptr}));
        trim::SyncOptions o;
        o.from = (dir / "repo").string();
        o.image = "crm";
        o.store = dir / "store";
        REQUIRE(trim::sync_image(o, keys));
        auto s = trim::Store::open(dir / "store");
        REQUIRE(s);
        auto m = s->load_manifest("crm", 1, keys.signing_public);
        REQUIRE(m);
        auto reader = trim::ImageReader::open(dir / "store", *m, keys.family);
        REQUIRE(reader);
        auto e = NbdExport::start(dir / "base.nbd",
                                  std::make_shared<trim::ImageReader>(std::move(*reader)), "crm");
        REQUIRE(e);
        exp = std::move(*e);
    }
    VmSpec spec(const std::string& key) {
        VmSpec s;
        s.name = "crm";
        s.run_dir = dir / "run";
        s.base_socket = dir / "base.nbd";
        s.base_export = "crm";
        s.overlay = dir / "overlay.qcow2";
        s.overlay_key = key;
        s.memory_mib = 128;
        s.cpus = 1;
        s.network = false;
        s.accel = Accel::tcg;
        return s;
    }
};

std::string qemu_io(Vm& vm, const std::string& command) {
    auto r = vm.qmp().execute("human-monitor-command",
                              {{"command-line", "qemu-io disk \"" + command + "\""}});
    REQUIRE(r);
    return r->get<std::string>();
}

std::string hex_byte(std::uint8_t b) {
    return fmt::format("{:#04x}", b);
}

} // namespace

TEST_CASE("a VM boots its disk from the export through an encrypted overlay", "[vm]") {
    Workspace ws;
    std::string key = new_overlay_key();
    CHECK(key.size() == 64);
    REQUIRE(create_overlay(ws.dir / "overlay.qcow2", disk_size, key));
    CHECK((fs::status(ws.dir / "overlay.qcow2").permissions() & fs::perms::all) ==
          (fs::perms::owner_read | fs::perms::owner_write));
    const auto& file = ws.disk.files.front();
    {
        auto vm = Vm::start(ws.spec(key));
        REQUIRE(vm);
        CHECK((*vm)->alive());
        auto status = (*vm)->qmp().execute("query-status");
        REQUIRE(status);
        CHECK((*status)["status"] == "running");
        // The guest sees the image's bytes through the overlay...
        std::string out =
            qemu_io(**vm, fmt::format("read -P {} {} 1", hex_byte(file.data[0]), file.offset));
        CHECK_THAT(out, !Catch::Contains("failed"));
        (*vm)->shut_down(0ms);
        CHECK_FALSE((*vm)->alive());
    }
    CHECK(ws.exp->stats().bytes_read > 0);

    // A write to the overlay (one whole 64 KiB cluster, by qemu-io while the VM is down)...
    fs::path key_file = ws.dir / "key"; // the test's own copy; the agent never writes one
    test::write_file(key_file, as_bytes(key));
    auto io =
        test::run({"qemu-io", "--object", "secret,id=k,file=" + key_file.string(), "--image-opts",
                   "driver=qcow2,file.filename=" + (ws.dir / "overlay.qcow2").string() +
                       ",encrypt.key-secret=k",
                   "-c", "write -P 0xa7 1048576 65536"});
    REQUIRE(io.exit_code == 0);
    CHECK_THAT(io.out, Catch::Contains("wrote 65536"));
    // ...is stored encrypted: the plaintext pattern is nowhere in the file...
    Bytes overlay = *read_file(ws.dir / "overlay.qcow2", 64u << 20);
    Bytes pattern(4096, 0xa7);
    CHECK(std::search(overlay.begin(), overlay.end(), pattern.begin(), pattern.end()) ==
          overlay.end());
    // ...and the VM started again with the same key sees it above the image.
    {
        auto vm = Vm::start(ws.spec(key));
        REQUIRE(vm);
        CHECK_THAT(qemu_io(**vm, "read -P 0xa7 1048576 65536"), !Catch::Contains("failed"));
        CHECK_THAT(
            qemu_io(**vm, fmt::format("read -P {} {} 1", hex_byte(file.data[0]), file.offset)),
            !Catch::Contains("failed"));
    }
    // With another key, QEMU refuses the overlay and says so.
    auto wrong = Vm::start(ws.spec(new_overlay_key()));
    REQUIRE_FALSE(wrong);
    CHECK_THAT(wrong.error().message, Catch::Contains("Invalid password"));
}

TEST_CASE("the overlay key never appears in QEMU's command line", "[vm]") {
    Workspace ws;
    std::string key = new_overlay_key();
    REQUIRE(create_overlay(ws.dir / "overlay.qcow2", disk_size, key));
    auto vm = Vm::start(ws.spec(key));
    REQUIRE(vm);
    auto proc = [&](const char* what) {
        std::ifstream in(fs::path("/proc") / std::to_string((*vm)->pid()) / what);
        return std::string(std::istreambuf_iterator<char>(in), {});
    };
    std::string text = proc("cmdline");
    CHECK_THAT(text, Catch::Contains("overlay-key"));
    CHECK_THAT(text, !Catch::Contains(key));
    CHECK(proc("environ").find(key) == std::string::npos);
}

TEST_CASE("a VM that dies is noticed", "[vm]") {
    Workspace ws;
    std::string key = new_overlay_key();
    REQUIRE(create_overlay(ws.dir / "overlay.qcow2", disk_size, key));
    auto vm = Vm::start(ws.spec(key));
    REQUIRE(vm);
    REQUIRE((*vm)->alive());
    ::kill((*vm)->pid(), SIGKILL);
    for (int i = 0; i < 100 && (*vm)->alive(); ++i)
        std::this_thread::sleep_for(20ms);
    CHECK_FALSE((*vm)->alive());
    CHECK((*vm)->exit_code() == 128 + SIGKILL);
}

TEST_CASE("a QEMU that cannot start gives its reason", "[vm]") {
    Workspace ws;
    auto spec = ws.spec(new_overlay_key()); // no overlay made
    auto vm = Vm::start(spec);
    REQUIRE_FALSE(vm);
    CHECK_THAT(vm.error().message, Catch::Contains("overlay.qcow2"));
}
