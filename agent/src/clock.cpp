#include "heirloom/agent/clock.hpp"

#include "heirloom/common/json.hpp"

#include <ctime>
#include <fstream>

namespace heirloom::agent {
namespace {

constexpr std::string_view label = "clock";

std::string current_boot_id() {
    // Read as a stream: procfs files report a size of 0, so read_text_file (which reads the
    // size stat gives) would always return an empty id, and the anchor would never count.
    std::ifstream in("/proc/sys/kernel/random/boot_id");
    std::string id;
    std::getline(in, id);
    while (!id.empty() && (id.back() == '\n' || id.back() == ' '))
        id.pop_back();
    return id;
}

std::int64_t boottime() {
    timespec ts{};
    ::clock_gettime(CLOCK_BOOTTIME, &ts);
    return ts.tv_sec;
}

std::int64_t wall() {
    return static_cast<std::int64_t>(std::time(nullptr));
}

} // namespace

Result<TrustedClock> TrustedClock::load(const Vault& vault, fs::path file) {
    TrustedClock clock(vault, std::move(file));
    if (fs::exists(clock.file_)) {
        std::string text = HL_TRY(vault.read_authenticated(clock.file_, label));
        Json doc = HL_TRY_CTX(parse_json(text), clock.file_.string());
        try {
            clock.high_water_ = doc.at("high_water").get<std::int64_t>();
            clock.boot_id_ = doc.at("boot_id").get<std::string>();
            clock.anchor_wall_ = doc.at("anchor_wall").get<std::int64_t>();
            clock.anchor_boot_ = doc.at("anchor_boot").get<std::int64_t>();
            clock.policy_serial_ = doc.at("policy_serial").get<std::uint64_t>();
        } catch (const std::exception&) {
            return fail(Errc::corrupt, clock.file_.string() + ": not a time anchor");
        }
    }
    if (clock.boot_id_ != current_boot_id()) {
        clock.boot_id_.clear(); // another boot: only the high-water mark carries over
    }
    return clock;
}

std::int64_t TrustedClock::now() {
    std::int64_t system = wall();
    std::int64_t t = std::max(system, high_water_);
    if (!boot_id_.empty()) {
        std::int64_t elapsed = boottime() - anchor_boot_;
        if (elapsed >= 0)
            t = std::max(t, anchor_wall_ + elapsed);
    }
    behind_ = t > system ? t - system : 0;
    high_water_ = t;
    return t;
}

Status TrustedClock::save() {
    std::int64_t t = now();
    boot_id_ = current_boot_id();
    anchor_wall_ = t;
    anchor_boot_ = boottime();
    Json doc = {{"high_water", high_water_},
                {"boot_id", boot_id_},
                {"anchor_wall", anchor_wall_},
                {"anchor_boot", anchor_boot_},
                {"policy_serial", policy_serial_}};
    return vault_->write_authenticated(file_, label, doc.dump());
}

} // namespace heirloom::agent
