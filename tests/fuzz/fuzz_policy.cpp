// Fuzzes the policy set parser and the signed policy verifier: any bytes must give a value or
// an error, never a crash. A set that parses must round-trip through its JSON form exactly,
// and its evaluation for any of its principals must sign and verify back to the same policy.
#include "heirloom/policy/json.hpp"
#include "heirloom/policy/signed.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

using namespace heirloom;
using namespace heirloom::policy;

namespace {
const crypto::SigningKeyPair& server_key() {
    static const crypto::SigningKeyPair key = [] {
        if (!crypto::init())
            std::abort();
        return crypto::generate_signing_key();
    }();
    return key;
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto& key = server_key();
    std::string_view text(reinterpret_cast<const char*>(data), size);
    (void)verify_policy(ByteView(data, size), key.public_key, "bob", 1'800'000'000, 0);

    auto set = parse_policy_set(text);
    if (!set)
        return 0;
    auto again = parse_policy_set(to_json(*set).dump());
    if (!again || !(*again == *set))
        std::abort();
    for (const auto& assignment : set->assignments) {
        std::vector<std::string> groups{assignment.principal.name};
        EffectivePolicy effective =
            evaluate(*set, assignment.principal.name, groups, assignment.expires_at - 1);
        auto signed_policy = sign_policy(effective, 1000, 2000, 1, key.secret_key);
        if (!signed_policy)
            std::abort();
        auto verified = verify_policy(*signed_policy, key.public_key, effective.user, 1500, 1);
        if (!verified || !(verified->policy == effective))
            std::abort();
    }
    return 0;
}
