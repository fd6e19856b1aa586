#pragma once

// Signed effective policies, so an agent can trust its user's policy while offline.
//
// Envelope (UTF-8 JSON, exactly as nlohmann dump() writes it, keys sorted, no spaces):
//   {"payload":"<canonical JSON of the policy>","signature":"<128 lowercase hex digits>"}
// The signature is Ed25519 over signing_context followed by the payload bytes, so a signature
// made by the same server key for anything else can never pass as a policy. The payload is
// {"apps":[...],"expires_at":N,"issued_at":N,"serial":N,"user":"...","workspaces":[...]}.
// Verification refuses any envelope or payload not byte-for-byte in canonical form, so there
// is exactly one accepted encoding of each signed policy.

#include "heirloom/common/bytes.hpp"
#include "heirloom/common/crypto.hpp"
#include "heirloom/common/json.hpp"
#include "heirloom/policy/evaluate.hpp"

#include <cstdint>
#include <string_view>

namespace heirloom::policy {

// Prefixed to the payload before signing: domain separation from other signed objects.
inline constexpr std::string_view signing_context = "heirloom-policy-v1";
// How far in the future issued_at may be, for endpoint clocks that run a little slow.
inline constexpr std::int64_t max_clock_skew = 300;
// Largest envelope an agent will look at.
inline constexpr std::size_t max_signed_policy = 4u << 20;

// A verified policy with the metadata it was signed with.
struct SignedPolicy {
    EffectivePolicy policy;
    std::int64_t issued_at = 0;
    std::int64_t expires_at = 0;
    std::uint64_t serial = 0; // only ever increases for a user; older serials are replays
    bool operator==(const SignedPolicy&) const = default;
};

// The JSON form of an effective policy ({"user", "workspaces", "apps"}), as inside a signed
// policy's payload; admins see it to learn which assignment decided each control.
Json to_json(const EffectivePolicy& policy);

// Signs policy for its user, valid from issued_at until (not including) expires_at.
Result<Bytes> sign_policy(const EffectivePolicy& policy, std::int64_t issued_at,
                          std::int64_t expires_at, std::uint64_t serial,
                          const crypto::SigningSecretKey& key);

// Verifies an envelope against the pinned server key and returns its policy, refusing a bad
// signature, tampered or non-canonical bytes, another user's policy, an expired or not yet
// valid policy, and a serial below min_serial.
Result<SignedPolicy> verify_policy(ByteView signed_policy, const crypto::SigningPublicKey& pinned,
                                   std::string_view expected_user, std::int64_t now,
                                   std::uint64_t min_serial);

} // namespace heirloom::policy
