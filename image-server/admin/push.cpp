#include "push.hpp"

#include "heirloom/common/crypto.hpp"
#include "heirloom/trim/delta.hpp"
#include "heirloom/trim/format.hpp"

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

namespace heirloom::admin {
namespace {

constexpr std::size_t missing_batch = 5000; // ~400 KB of JSON, under the body limit

// The image's family secret from the server, creating the image on first push.
Result<crypto::Key> fetch_key(client::ApiClient& api, const std::string& image, bool& created,
                              std::uint64_t& server_latest) {
    std::string path = "/v1/admin/images/" + client::url_encode(image) + "/key";
    auto doc = api.get(path);
    if (!doc && doc.error().code == Errc::not_found) {
        HL_TRY_CTX(api.post("/v1/admin/images", {{"name", image}}), "create image " + image);
        created = true;
        doc = api.get(path);
    }
    if (!doc)
        return std::unexpected(std::move(doc).error().context("fetch the key of image " + image));
    if (!doc->contains("family_secret") || !(*doc)["family_secret"].is_string() ||
        !doc->contains("latest") || !(*doc)["latest"].is_number_unsigned())
        return fail(Errc::corrupt, "the server's answer for the key of " + image + " is malformed");
    server_latest = (*doc)["latest"].get<std::uint64_t>();
    auto secret = HL_TRY_CTX(from_hex_fixed<32>((*doc)["family_secret"].get<std::string>()),
                             "the key of image " + image);
    auto& stored = (*doc)["family_secret"].get_ref<std::string&>();
    crypto::secure_wipe({reinterpret_cast<std::uint8_t*>(stored.data()), stored.size()});
    return secret;
}

// The cache's signing pair, made on first use.
Result<crypto::SigningKeyPair> local_signing_key(const fs::path& cache) {
    fs::path secret_file = cache / "cache-signing.key";
    crypto::SigningKeyPair pair;
    if (!fs::exists(secret_file)) {
        pair = crypto::generate_signing_key();
        HL_TRY(trim::write_key_file(secret_file, pair.secret_key, FileMode::owner_only));
        return pair;
    }
    Bytes secret = HL_TRY(trim::read_key_file(secret_file, 64, trim::KeySecrecy::secret));
    std::copy(secret.begin(), secret.end(), pair.secret_key.begin());
    std::copy(secret.begin() + 32, secret.end(), pair.public_key.begin());
    crypto::secure_wipe(secret);
    return pair;
}

// Every object a manifest references, as repository paths.
std::vector<std::string> objects_of(const trim::Manifest& m) {
    std::vector<std::string> out;
    for (const auto& e : m.chunks)
        out.push_back(trim::chunk_path(e.id));
    for (const auto& d : m.deltas)
        for (const auto& e : m.chunks)
            if (e.index == d.index)
                out.push_back(trim::delta_path(d.from, e.id));
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

// Errc::cancelled once options.cancel is set.
Status check_cancel(const PushOptions& options, std::string_view step) {
    if (options.cancel && options.cancel->load())
        return fail(Errc::cancelled, "push cancelled " + std::string(step) +
                                         "; no version was published (uploaded objects are kept "
                                         "for the next push)");
    return {};
}

} // namespace

Result<PushResult> push_image(client::ApiClient& api, const std::string& token,
                              const PushOptions& options) {
    auto start = std::chrono::steady_clock::now();
    PushResult result;
    result.image = options.image;
    std::uint64_t server_latest = 0;
    HL_TRY(check_cancel(options, "before it started"));
    crypto::Key secret = HL_TRY(fetch_key(api, options.image, result.image_created, server_latest));
    HL_TRY(make_dirs(options.cache));
    // The server signs the manifest it publishes; this local pair only signs the cache's own
    // copies, which the next push checks before packing deltas against them.
    auto pair = HL_TRY(local_signing_key(options.cache));
    trim::KeySet keys{trim::FamilyKeys(secret), pair.public_key, pair.secret_key};
    crypto::secure_wipe(secret);
    crypto::secure_wipe(pair.secret_key);
    auto local_latest = HL_TRY(trim::repository_latest(options.cache, options.image));
    std::uint64_t version = std::max(server_latest, local_latest.value_or(0)) + 1;
    trim::PackOptions pack;
    pack.name = options.image;
    pack.version = version;
    pack.expires_in_seconds = options.expires_in_seconds;
    pack.deltas = options.deltas;
    pack.progress = options.progress;
    result.pack = HL_TRY_CTX(trim::pack_image(options.vhd, options.cache, keys, pack),
                             "pack " + options.vhd.string());
    result.version = version;
    HL_TRY(check_cancel(options, "after packing"));

    fs::path manifest_file = options.cache / trim::manifest_path(options.image, version);
    Bytes manifest = HL_TRY(read_file(manifest_file, trim::max_manifest_size));
    auto parsed = HL_TRY(trim::parse_manifest_unverified(manifest));
    auto objects = objects_of(parsed);
    result.objects = objects.size();

    std::vector<std::string> missing;
    std::string image_path = "/v1/admin/images/" + client::url_encode(options.image);
    for (std::size_t i = 0; i < objects.size(); i += missing_batch) {
        std::vector<std::string> batch(objects.begin() + static_cast<std::ptrdiff_t>(i),
                                       objects.begin() + static_cast<std::ptrdiff_t>(std::min(
                                                             objects.size(), i + missing_batch)));
        Json answer = HL_TRY_CTX(api.post(image_path + "/missing", {{"objects", batch}}),
                                 "ask which objects the server lacks");
        if (!answer.contains("missing") || !answer["missing"].is_array())
            return fail(Errc::corrupt, "the server's list of missing objects is malformed");
        for (const auto& m : answer["missing"])
            if (m.is_string())
                missing.push_back(m.get<std::string>());
    }

    HL_TRY(check_cancel(options, "before uploading"));
    std::atomic<std::size_t> next{0};
    std::atomic<std::uint64_t> uploaded{0}, bytes{0};
    std::mutex error_mutex;
    std::optional<Error> first_error;
    auto worker = [&]() {
        auto own = client::ApiClient::open(api.options());
        if (!own) {
            std::lock_guard lock(error_mutex);
            first_error = own.error();
            return;
        }
        (*own)->set_token(token);
        for (std::size_t i = next++; i < missing.size(); i = next++) {
            {
                std::lock_guard lock(error_mutex);
                if (first_error)
                    return;
                if (auto stop = check_cancel(options, "while uploading"); !stop) {
                    first_error = stop.error();
                    return;
                }
            }
            auto object = read_file(options.cache / missing[i], 64ull << 20);
            Status done;
            if (!object)
                done = std::unexpected(object.error());
            else if (auto put = (*own)->put_bytes(image_path + "/objects/" + missing[i], *object);
                     !put)
                done = std::unexpected(put.error().context("upload " + missing[i]));
            if (!done) {
                std::lock_guard lock(error_mutex);
                if (!first_error)
                    first_error = done.error();
                return;
            }
            ++uploaded;
            bytes += object->size();
            if (options.progress)
                options.progress->update("upload", uploaded, missing.size());
        }
    };
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < std::max(1u, options.connections); ++t)
        threads.emplace_back(worker);
    for (auto& t : threads)
        t.join();
    if (first_error)
        return std::unexpected(*first_error);
    result.objects_uploaded = uploaded;
    result.bytes_uploaded = bytes;
    HL_TRY(check_cancel(options, "before publishing"));

    auto committed = api.put_bytes(image_path + "/versions/" + std::to_string(version), manifest);
    if (!committed)
        return std::unexpected(
            std::move(committed).error().context("publish version " + std::to_string(version)));
    result.manifest_bytes = manifest.size();
    result.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return result;
}

} // namespace heirloom::admin
