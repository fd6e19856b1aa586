#include "heirloom/client/api_client.hpp"

#include "heirloom/common/file.hpp"

#include <httplib.h>

namespace heirloom::client {

Errc errc_for_status(int status) {
    switch (status) {
    case 401:
        return Errc::crypto;
    case 403:
        return Errc::denied;
    case 404:
        return Errc::not_found;
    case 409:
        return Errc::conflict;
    default:
        return status >= 400 && status < 500 ? Errc::invalid_argument : Errc::network;
    }
}

std::string url_encode(std::string_view text) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : text) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            out += static_cast<char>(c);
            continue;
        }
        out += '%';
        out += hex[c >> 4];
        out += hex[c & 15];
    }
    return out;
}

namespace {

// A server's message without control characters, bounded, for showing to a person.
std::string readable(std::string_view text) {
    std::string out;
    for (char c : text.substr(0, 500))
        out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? ' ' : c;
    return out;
}

} // namespace

ApiClient::ApiClient(ServerOptions options, Url url)
    : options_(std::move(options)), url_(std::move(url)) {}

ApiClient::~ApiClient() = default;

Result<std::unique_ptr<ApiClient>> ApiClient::open(const ServerOptions& options) {
    Url url = HL_TRY_CTX(parse_url(options.url), "server");
    if (!url.prefix.empty())
        return fail(Errc::invalid_argument,
                    "server URL " + url.display + ": give the server's address without a path");
    if (!options.ca_file.empty() && !fs::exists(options.ca_file))
        return fail(Errc::not_found, "CA file " + options.ca_file + " does not exist");
    std::unique_ptr<ApiClient> client(new ApiClient(options, url));
    if (url.https) {
        auto ssl = std::make_unique<httplib::SSLClient>(url.host, url.port);
        ssl->enable_server_certificate_verification(true);
        if (!options.ca_file.empty())
            ssl->set_ca_cert_path(options.ca_file);
        client->http_ = std::move(ssl);
    } else {
        client->http_ = std::make_unique<httplib::ClientImpl>(url.host, url.port);
    }
    auto& http = *client->http_;
    http.set_connection_timeout(options.timeout_seconds, 0);
    http.set_read_timeout(options.timeout_seconds, 0);
    http.set_write_timeout(options.timeout_seconds, 0);
    http.set_keep_alive(true);
    http.set_tcp_nodelay(true);
    http.set_follow_location(false);
    return client;
}

void ApiClient::set_token(std::string token) {
    token_ = std::move(token);
}

void ApiClient::set_negotiate(std::string token) {
    negotiate_ = std::move(token);
}

Result<std::string> ApiClient::exchange(std::string_view method, std::string_view path,
                                        std::string_view body, std::string_view content_type) {
    httplib::Headers headers;
    if (!negotiate_.empty())
        headers.emplace("Authorization", "Negotiate " + negotiate_);
    else if (!token_.empty())
        headers.emplace("Authorization", "Bearer " + token_);
    std::string target(path);
    std::string what =
        std::string(method) + " " + url_.display + target.substr(0, target.find('?'));
    httplib::Result result{nullptr, httplib::Error::Unknown};
    std::string type(content_type);
    auto send = [&] {
        if (method == "GET")
            result = http_->Get(target.c_str(), headers);
        else if (method == "DELETE")
            result = http_->Delete(target.c_str(), headers);
        else if (method == "POST")
            result = http_->Post(target.c_str(), headers, body.data(), body.size(), type.c_str());
        else
            result = http_->Put(target.c_str(), headers, body.data(), body.size(), type.c_str());
    };
    send();
    // A kept-alive connection the server has closed in the meantime fails on first use; one
    // retry on a fresh connection is safe when the request never arrived (a failed write), or
    // when it is idempotent (everything but POST).
    if (!result && (result.error() == httplib::Error::Write ||
                    (result.error() == httplib::Error::Read && method != "POST"))) {
        http_->stop();
        send();
    }
    if (!result) {
        std::string reason = httplib::to_string(result.error());
        if (result.error() == httplib::Error::SSLServerVerification)
            reason += " (the server's certificate is not trusted: pass its CA with --ca-file)";
        else if (result.error() == httplib::Error::Connection)
            reason = "cannot connect to the server (is it running, and is the address right?)";
        else if (result.error() == httplib::Error::Read || result.error() == httplib::Error::Write)
            reason = "the connection to the server broke (" + reason + ")";
        return fail(Errc::network, what + ": " + reason);
    }
    if (result->status >= 200 && result->status < 300)
        return std::move(result->body);
    std::string message = "HTTP " + std::to_string(result->status);
    auto doc = parse_json(result->body, 1 << 20);
    if (doc && doc->is_object() && doc->contains("error") && (*doc)["error"].is_string())
        message = readable((*doc)["error"].get<std::string>());
    return fail(errc_for_status(result->status), message);
}

namespace {

Result<Json> as_json(Result<std::string> body) {
    if (!body)
        return std::unexpected(std::move(body).error());
    if (body->empty())
        return Json::object();
    return parse_json(*body);
}

} // namespace

Result<Json> ApiClient::get(std::string_view path) {
    return as_json(exchange("GET", path, {}, {}));
}

Result<Json> ApiClient::post(std::string_view path, const Json& body) {
    return as_json(exchange("POST", path, body.dump(), "application/json"));
}

Result<Json> ApiClient::put(std::string_view path, const Json& body) {
    return as_json(exchange("PUT", path, body.dump(), "application/json"));
}

Result<Json> ApiClient::del(std::string_view path) {
    return as_json(exchange("DELETE", path, {}, {}));
}

Result<std::string> ApiClient::get_text(std::string_view path) {
    return exchange("GET", path, {}, {});
}

Result<Json> ApiClient::put_bytes(std::string_view path, ByteView body) {
    return as_json(exchange("PUT", path, {reinterpret_cast<const char*>(body.data()), body.size()},
                            "application/octet-stream"));
}

} // namespace heirloom::client
