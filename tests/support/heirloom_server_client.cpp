// The Catch2-checked helpers of HeirloomServer, apart from the rest of it so that test
// programs without Catch2 (the console's Qt Test suite) can start the real server too.

#include "support/heirloom_server.hpp"

#include <catch2/catch.hpp>

namespace heirloom::test {

std::unique_ptr<client::ApiClient> HeirloomServer::client() const {
    auto api = client::ApiClient::open({url(), tls_files_.certificate.string(), 30});
    REQUIRE(api);
    return std::move(*api);
}

Result<std::string> HeirloomServer::session_token(const std::string& user,
                                                  const std::string& password) const {
    auto api = client();
    Json answer = HL_TRY(api->post("/v1/login", {{"user", user}, {"password", password}}));
    return answer.at("token").get<std::string>();
}

std::unique_ptr<client::ApiClient> HeirloomServer::login(const std::string& user,
                                                         const std::string& password) const {
    auto token = session_token(user, password);
    INFO(log_text());
    REQUIRE(token);
    auto api = client();
    api->set_token(*token);
    return api;
}

} // namespace heirloom::test
