#include "heirloom/policy/signed.hpp"

#include "json_form.hpp"

#include <string>

namespace heirloom::policy {

namespace {

using namespace detail;

std::unexpected<Error> refuse(std::string message) {
    return fail(Errc::crypto, "signed policy: " + std::move(message));
}

Json effective_workspace_to_json(const EffectiveWorkspace& w) {
    const DecidedBy& why = w.decided_by;
    return {
        {"workspace", workspace_to_json(w.workspace)},
        {"image", image_to_json(w.image)},
        {"controls", controls_to_json(w.controls)},
        {"lease",
         {{"expires_at", w.lease.expires_at},
          {"offline_limit", w.lease.offline_limit},
          {"on_expiry", on_expiry_name(w.lease.on_expiry)}}},
        {"decided_by",
         {{"clipboard", why.clipboard},
          {"file_transfer", why.file_transfer},
          {"printing", why.printing},
          {"removable_media", why.removable_media},
          {"expires_at", why.expires_at},
          {"offline_limit", why.offline_limit},
          {"on_expiry", why.on_expiry}}},
        {"assignments", w.assignments},
    };
}

Result<DecidedBy> parse_decided_by(const Json& value, std::string_view path) {
    HL_TRY(expect_object(value, path,
                         {"clipboard", "file_transfer", "printing", "removable_media", "expires_at",
                          "offline_limit", "on_expiry"}));
    auto id = [&](std::string_view key) -> Result<std::string> {
        auto text = HL_TRY(string_field(value, path, key));
        HL_TRY(check_id(text, join(path, key)));
        return text;
    };
    DecidedBy why;
    why.clipboard = HL_TRY(id("clipboard"));
    why.file_transfer = HL_TRY(id("file_transfer"));
    why.printing = HL_TRY(id("printing"));
    why.removable_media = HL_TRY(id("removable_media"));
    why.expires_at = HL_TRY(id("expires_at"));
    why.offline_limit = HL_TRY(id("offline_limit"));
    why.on_expiry = HL_TRY(id("on_expiry"));
    return why;
}

Result<Lease> parse_lease(const Json& value, std::string_view path) {
    HL_TRY(expect_object(value, path, {"expires_at", "offline_limit", "on_expiry"}));
    Lease lease;
    lease.expires_at = HL_TRY(int_field(value, path, "expires_at", 0, limits::max_time));
    lease.offline_limit =
        HL_TRY(int_field(value, path, "offline_limit", 0, limits::max_offline_limit));
    lease.on_expiry = HL_TRY(parse_member(value, path, "on_expiry", parse_on_expiry));
    return lease;
}

Result<EffectiveWorkspace> parse_effective_workspace(const Json& value, std::string_view path) {
    HL_TRY(expect_object(value, path,
                         {"workspace", "image", "controls", "lease", "decided_by", "assignments"}));
    EffectiveWorkspace w;
    w.workspace = HL_TRY(parse_member(value, path, "workspace", parse_workspace));
    HL_TRY(validate_workspace(w.workspace, join(path, "workspace")));
    w.image = HL_TRY(parse_member(value, path, "image", parse_image));
    HL_TRY(validate_image(w.image, join(path, "image")));
    w.controls = HL_TRY(parse_member(value, path, "controls", parse_controls));
    w.lease = HL_TRY(parse_member(value, path, "lease", parse_lease));
    w.decided_by = HL_TRY(parse_member(value, path, "decided_by", parse_decided_by));
    w.assignments = HL_TRY(strings_field(value, path, "assignments", limits::set_entries));
    for (std::size_t i = 0; i < w.assignments.size(); ++i)
        HL_TRY(check_id(w.assignments[i], index(join(path, "assignments"), i)));
    return w;
}

Json payload_to_json(const EffectivePolicy& policy, std::int64_t issued_at, std::int64_t expires_at,
                     std::uint64_t serial) {
    Json doc = to_json(policy);
    doc["issued_at"] = issued_at;
    doc["expires_at"] = expires_at;
    doc["serial"] = serial;
    return doc;
}

Result<SignedPolicy> parse_payload(const Json& doc) {
    HL_TRY(expect_object(doc, "payload",
                         {"user", "issued_at", "expires_at", "serial", "workspaces", "apps"}));
    auto field = [&](std::string_view key) {
        return member(doc, "payload", key);
    };
    SignedPolicy signed_policy;
    EffectivePolicy& policy = signed_policy.policy;
    policy.user = HL_TRY(string_field(doc, "payload", "user"));
    signed_policy.issued_at = HL_TRY(int_field(doc, "payload", "issued_at", 0, limits::max_time));
    signed_policy.expires_at = HL_TRY(int_field(doc, "payload", "expires_at", 0, limits::max_time));
    signed_policy.serial = HL_TRY(uint_field(doc, "payload", "serial"));

    const Json& workspaces = *HL_TRY(field("workspaces"));
    HL_TRY(expect_array(workspaces, "payload.workspaces", limits::set_entries));
    for (std::size_t i = 0; i < workspaces.size(); ++i)
        policy.workspaces.push_back(
            HL_TRY(parse_effective_workspace(workspaces[i], index("payload.workspaces", i))));
    const Json& apps = *HL_TRY(field("apps"));
    HL_TRY(expect_array(apps, "payload.apps", limits::set_entries));
    for (std::size_t i = 0; i < apps.size(); ++i) {
        std::string path = index("payload.apps", i);
        policy.apps.push_back(HL_TRY(parse_app(apps[i], path)));
        HL_TRY(validate_app(policy.apps.back(), path));
    }
    return signed_policy;
}

// The exact bytes signed: the context string, then the payload.
Bytes signed_message(std::string_view payload) {
    Bytes message;
    message.reserve(signing_context.size() + payload.size());
    auto context = as_bytes(signing_context);
    auto body = as_bytes(payload);
    message.insert(message.end(), context.begin(), context.end());
    message.insert(message.end(), body.begin(), body.end());
    return message;
}

// nlohmann refuses to dump strings that are not UTF-8; that is the one exception dump throws.
Result<std::string> canonical(const Json& doc) {
    try {
        return doc.dump();
    } catch (const Json::exception& e) {
        return fail(Errc::invalid_argument, std::string("cannot encode policy: ") + e.what());
    }
}

bool is_lower_hex(std::string_view text) {
    for (char c : text)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    return true;
}

} // namespace

Json to_json(const EffectivePolicy& policy) {
    Json workspaces = Json::array();
    for (const auto& w : policy.workspaces)
        workspaces.push_back(effective_workspace_to_json(w));
    Json apps = Json::array();
    for (const auto& app : policy.apps)
        apps.push_back(app_to_json(app));
    return {{"user", policy.user}, {"workspaces", workspaces}, {"apps", apps}};
}

Result<Bytes> sign_policy(const EffectivePolicy& policy, std::int64_t issued_at,
                          std::int64_t expires_at, std::uint64_t serial,
                          const crypto::SigningSecretKey& key) {
    HL_TRY_CTX(check_name(policy.user, "user"), "sign policy");
    if (issued_at < 0 || expires_at > limits::max_time || expires_at <= issued_at)
        return fail(Errc::invalid_argument, "sign policy: expires_at must follow issued_at");
    std::string payload = HL_TRY_CTX(
        canonical(payload_to_json(policy, issued_at, expires_at, serial)), "sign policy");
    crypto::Signature signature = crypto::sign(key, signed_message(payload));
    Json envelope = {{"payload", payload}, {"signature", to_hex(signature)}};
    std::string text = HL_TRY_CTX(canonical(envelope), "sign policy");
    return Bytes(text.begin(), text.end());
}

Result<SignedPolicy> verify_policy(ByteView signed_policy, const crypto::SigningPublicKey& pinned,
                                   std::string_view expected_user, std::int64_t now,
                                   std::uint64_t min_serial) {
    if (signed_policy.size() > max_signed_policy)
        return refuse("too large");
    std::string_view text(reinterpret_cast<const char*>(signed_policy.data()),
                          signed_policy.size());
    auto envelope = parse_json(text, max_signed_policy);
    if (!envelope)
        return refuse(envelope.error().message);
    // One encoding only: anything dump() would not have written is tampering.
    auto envelope_text = canonical(*envelope);
    if (!envelope_text || *envelope_text != text)
        return refuse("envelope is not in canonical form");
    if (auto shape = expect_object(*envelope, "", {"payload", "signature"}); !shape)
        return refuse(shape.error().message);
    auto payload = member(*envelope, "", "payload");
    auto signature_field = member(*envelope, "", "signature");
    if (!payload || !signature_field || !(*payload)->is_string() ||
        !(*signature_field)->is_string())
        return refuse("expected string fields payload and signature");
    const auto& payload_text = (*payload)->get_ref<const std::string&>();
    const auto& signature_hex = (*signature_field)->get_ref<const std::string&>();
    if (!is_lower_hex(signature_hex))
        return refuse("signature is not lowercase hex");
    auto signature = from_hex_fixed<64>(signature_hex);
    if (!signature)
        return refuse("signature: " + signature.error().message);
    if (!crypto::verify(pinned, signed_message(payload_text), *signature))
        return refuse("signature does not match the pinned server key");

    // Signed by our server from here on; still parsed strictly, since a bug there must not
    // become a crash here.
    auto doc = parse_json(payload_text, max_signed_policy);
    if (!doc)
        return refuse("payload: " + doc.error().message);
    auto doc_text = canonical(*doc);
    if (!doc_text || *doc_text != payload_text)
        return refuse("payload is not in canonical form");
    auto result = parse_payload(*doc);
    if (!result)
        return refuse(result.error().message);

    if (expected_user.empty() || result->policy.user != expected_user)
        return refuse("policy is for user \"" + result->policy.user + "\", not \"" +
                      std::string(expected_user) + "\"");
    if (result->expires_at <= result->issued_at)
        return refuse("expires before it is issued");
    if (now >= result->expires_at)
        return refuse("expired at " + std::to_string(result->expires_at) +
                      "; connect to the server for a fresh policy");
    if (result->issued_at > now + max_clock_skew)
        return refuse("issued in the future (" + std::to_string(result->issued_at) +
                      "); check the clock of this computer");
    if (result->serial < min_serial)
        return refuse("serial " + std::to_string(result->serial) + " is older than " +
                      std::to_string(min_serial) + " already seen (replayed policy)");
    return result;
}

} // namespace heirloom::policy
