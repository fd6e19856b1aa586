#include "heirloom/common/json.hpp"
#include "heirloom/policy/signed.hpp"
#include "policy/sample_policy.hpp"

#include <catch2/catch.hpp>
#include <cctype>

using namespace heirloom;
using namespace heirloom::policy;
using policy::test::sample_policy;

namespace {

constexpr std::int64_t issued = 1'800'000'000;
constexpr std::int64_t expires = issued + 86400;

struct Fixture {
    crypto::SigningKeyPair server = crypto::generate_signing_key();
    std::vector<std::string> groups{"finance"};
    EffectivePolicy bob = evaluate(sample_policy(), "bob", groups, issued);

    Bytes sign(std::uint64_t serial = 7) {
        auto bytes = sign_policy(bob, issued, expires, serial, server.secret_key);
        REQUIRE(bytes);
        return *bytes;
    }
    Result<SignedPolicy> verify(const Bytes& bytes, std::int64_t now = issued + 10,
                                std::uint64_t min_serial = 7, std::string_view user = "bob") {
        return verify_policy(bytes, server.public_key, user, now, min_serial);
    }
};

} // namespace

TEST_CASE_METHOD(Fixture, "a signed policy verifies to the same policy", "[policy]") {
    REQUIRE(bob.workspaces.size() == 2);
    Bytes bytes = sign();
    auto verified = verify(bytes);
    REQUIRE(verified);
    CHECK(verified->policy == bob);
    CHECK(verified->issued_at == issued);
    CHECK(verified->expires_at == expires);
    CHECK(verified->serial == 7);
    // The envelope is the documented shape.
    std::string text(bytes.begin(), bytes.end());
    CHECK(text.starts_with("{\"payload\":\"{\\\"apps\\\":["));
    CHECK(text.find("\",\"signature\":\"") != std::string::npos);
    // Signing is deterministic (Ed25519), so one policy has one envelope.
    CHECK(sign() == bytes);
}

TEST_CASE_METHOD(Fixture, "every changed byte of a signed policy is refused", "[policy]") {
    Bytes bytes = sign();
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        for (std::uint8_t flip : {0x01, 0x20, 0x80}) {
            Bytes tampered = bytes;
            tampered[i] ^= flip;
            auto verified = verify(tampered);
            INFO("byte " << i << " xor " << int(flip));
            REQUIRE_FALSE(verified);
            CHECK(verified.error().code == Errc::crypto);
        }
    }
    Bytes truncated(bytes.begin(), bytes.end() - 1);
    CHECK_FALSE(verify(truncated));
    Bytes extended = bytes;
    extended.push_back(' ');
    CHECK_FALSE(verify(extended));
    CHECK_FALSE(verify(Bytes{}));
}

TEST_CASE_METHOD(Fixture, "a policy signed by another key is refused", "[policy]") {
    crypto::SigningKeyPair other = crypto::generate_signing_key();
    auto bytes = sign_policy(bob, issued, expires, 7, other.secret_key);
    REQUIRE(bytes);
    auto verified = verify(*bytes);
    REQUIRE_FALSE(verified);
    CHECK(verified.error().message ==
          "signed policy: signature does not match the pinned server key");
    CHECK(verify_policy(*bytes, other.public_key, "bob", issued + 10, 7));
}

TEST_CASE_METHOD(Fixture, "a policy for another user is refused", "[policy]") {
    Bytes bytes = sign();
    auto verified = verify(bytes, issued + 10, 7, "alice");
    REQUIRE_FALSE(verified);
    CHECK(verified.error().message == "signed policy: policy is for user \"bob\", not \"alice\"");
    CHECK_FALSE(verify(bytes, issued + 10, 7, ""));
    CHECK_FALSE(verify(bytes, issued + 10, 7, "Bob"));
}

TEST_CASE_METHOD(Fixture, "expired and not yet valid policies are refused", "[policy]") {
    Bytes bytes = sign();
    CHECK(verify(bytes, expires - 1));
    auto expired = verify(bytes, expires);
    REQUIRE_FALSE(expired);
    CHECK(expired.error().message.starts_with("signed policy: expired at"));
    CHECK_FALSE(verify(bytes, expires + 1'000'000));
    CHECK(verify(bytes, issued - max_clock_skew));
    auto early = verify(bytes, issued - max_clock_skew - 1);
    REQUIRE_FALSE(early);
    CHECK(early.error().message.starts_with("signed policy: issued in the future"));
    CHECK_FALSE(sign_policy(bob, issued, issued, 7, server.secret_key));
}

TEST_CASE_METHOD(Fixture, "an older serial is refused as a replay", "[policy]") {
    Bytes old = sign(6);
    auto replayed = verify(old, issued + 10, 7);
    REQUIRE_FALSE(replayed);
    CHECK(replayed.error().message.find("replayed policy") != std::string::npos);
    CHECK(verify(sign(7), issued + 10, 7));
    CHECK(verify(sign(8), issued + 10, 7));
}

TEST_CASE_METHOD(Fixture, "a well-signed but non-canonical envelope is refused", "[policy]") {
    Bytes bytes = sign();
    Json envelope = Json::parse(bytes.begin(), bytes.end());
    std::string pretty = envelope.dump(2);
    CHECK_FALSE(verify(Bytes(pretty.begin(), pretty.end())));
    // Upper-case hex would decode to the same signature: still refused.
    std::string sig = envelope["signature"];
    for (auto& c : sig)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    envelope["signature"] = sig;
    std::string upper = envelope.dump();
    CHECK_FALSE(verify(Bytes(upper.begin(), upper.end())));
}
