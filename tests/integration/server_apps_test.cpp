// The apps guests hold, through the real server and heirloom-admin: an agent reports what the
// guest of an image version holds, an admin lists it (with icons), and hostile or unauthorised
// reports are refused with a message that says why.

#include "heirloom/agent/guest_protocol.hpp"
#include "heirloom/shell/icon.hpp"
#include "support/server_deployment.hpp"

#include <arpa/inet.h>
#include <catch2/catch.hpp>
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace heirloom;

namespace {

Bytes icon_png() {
    Bytes rgba(64 * 64 * 4);
    for (std::size_t i = 0; i < rgba.size(); ++i)
        rgba[i] = static_cast<std::uint8_t>(i * 7);
    auto png = shell::encode_png(64, 64, rgba);
    REQUIRE(png);
    return *png;
}

Json report(std::vector<Json> apps) {
    return {{"apps", apps}};
}

Json payroll_app() {
    return {{"id", "payroll"},
            {"name", "Payroll"},
            {"command", "C:\\Apps\\Payroll\\PAYROLL.EXE"},
            {"file_types", {"application/x-payroll"}},
            {"icon_png_base64", guest::base64_encode(icon_png())}};
}

Json clock_app() {
    return {{"id", "clock"},
            {"name", "Clock"},
            {"command", "/usr/bin/xclock -digital"},
            {"file_types", Json::array()}};
}

// Payroll (versions 1 and 2) for finance and staff, cad for contractors.
struct AppsDeployment {
    test::TempDir dir;

    void set_up(const test::HeirloomServer& server) {
        test::admin_login(server, dir / "home");
        auto payroll = test::make_disk(4ull << 20, 8, 201);
        REQUIRE(test::push_disk(server, dir / "home", "payroll", payroll, dir.path()) == 1);
        test::rewrite_files(payroll, 2, 202);
        REQUIRE(test::push_disk(server, dir / "home", "payroll", payroll, dir.path()) == 2);
        REQUIRE(test::push_disk(server, dir / "home", "cad", test::make_disk(4ull << 20, 4, 203),
                                dir.path()) == 1);
        auto admin = server.login("carol", "carol-pw");
        for (const auto& [path, body] : std::vector<std::pair<std::string, Json>>{
                 {"/v1/admin/workspaces/payroll-ws", test::workspace("payroll", "Payroll")},
                 {"/v1/admin/workspaces/cad-ws", test::workspace("cad", "CAD")},
                 {"/v1/admin/assignments/finance-payroll",
                  test::assignment("payroll-ws", "group", "finance", "off", "off", "off", "off")},
                 {"/v1/admin/assignments/contractors-cad",
                  test::assignment("cad-ws", "group", "contractors", "off", "off", "off",
                                   "off")}}) {
            auto r = admin->put(path, body);
            INFO(path << ": " << (r ? "" : r.error().message));
            REQUIRE(r);
        }
    }
};

// The status and error message of a PUT of body to path with token (empty: none).
std::pair<int, std::string> put_raw(const test::HeirloomServer& server, const std::string& token,
                                    const std::string& path, const std::string& body) {
    httplib::Client http(server.url());
    http.set_ca_cert_path(server.ca_file().string());
    if (!token.empty())
        http.set_bearer_token_auth(token);
    auto answer = http.Put(path, body, "application/json");
    REQUIRE(answer);
    auto doc = parse_json(answer->body);
    return {answer->status,
            doc && doc->contains("error") ? (*doc)["error"].get<std::string>() : answer->body};
}

// What the server answers a PUT whose headers declare length body bytes, before any is sent:
// a raw TLS connection, as a client that stops after its headers.
std::string declared_length_answer(const test::HeirloomServer& server, const std::string& token,
                                   const std::string& path, std::size_t length) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(server.port()));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    REQUIRE(SSL_CTX_load_verify_locations(ctx, server.ca_file().c_str(), nullptr) == 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    std::string answer;
    if (SSL_connect(ssl) == 1) {
        std::string request =
            "PUT " + path + " HTTP/1.1\r\nHost: localhost\r\n" + "Authorization: Bearer " + token +
            "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(length) +
            "\r\n\r\n";
        SSL_write(ssl, request.data(), static_cast<int>(request.size()));
        char buffer[4096];
        int n = 0;
        while ((n = SSL_read(ssl, buffer, sizeof buffer)) > 0) {
            answer.append(buffer, static_cast<std::size_t>(n));
            if (answer.find('}') != std::string::npos)
                break; // the JSON error body is complete
        }
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    ::close(fd);
    return answer;
}

} // namespace

TEST_CASE("server apps: a guest's apps are reported per version and listed for admins",
          "[server][apps][integration]") {
    test::Slapd slapd;
    HL_SKIP_UNLESS_RUNNING(slapd);
    test::HeirloomServer server(slapd);
    HL_SKIP_UNLESS_RUNNING(server);
    AppsDeployment d;
    d.set_up(server);
    auto alice = test::enrol(server, "alice", "alice-pw", "pc-alice");
    auto agent = test::agent_client(server, alice);
    auto admin = server.login("carol", "carol-pw");

    // Nothing reported yet.
    auto none = admin->get("/v1/admin/images/payroll/apps");
    REQUIRE(none);
    CHECK((*none)["version"].is_null());
    CHECK((*none)["apps"].empty());

    auto stored = agent->put("/v1/agent/images/payroll/versions/1/apps",
                             report({payroll_app(), clock_app()}));
    INFO((stored ? "" : stored.error().message) << server.log_text());
    REQUIRE(stored);
    CHECK((*stored)["stored"] == 2);
    REQUIRE(agent->put("/v1/agent/images/payroll/versions/2/apps", report({clock_app()})));

    // The newest version with a report by default, any version on request.
    auto latest = admin->get("/v1/admin/images/payroll/apps");
    REQUIRE(latest);
    CHECK((*latest)["version"] == 2);
    REQUIRE((*latest)["apps"].size() == 1);
    CHECK((*latest)["apps"][0]["icon_url"].is_null());
    auto v1 = admin->get("/v1/admin/images/payroll/apps?version=1");
    REQUIRE(v1);
    CHECK((*v1)["version"] == 1);
    CHECK((*v1)["reported_by"]["agent"] == alice.agent_id);
    CHECK((*v1)["reported_by"]["user"] == "alice");
    CHECK((*v1)["reported_by"]["hostname"] == "pc-alice");
    REQUIRE((*v1)["apps"].size() == 2);
    const Json& payroll = (*v1)["apps"][0];
    CHECK(payroll["id"] == "payroll");
    CHECK(payroll["name"] == "Payroll");
    CHECK(payroll["command"] == "C:\\Apps\\Payroll\\PAYROLL.EXE");
    CHECK(payroll["file_types"] == Json({"application/x-payroll"}));
    CHECK(payroll["icon_url"] == "/v1/admin/images/payroll/versions/1/apps/payroll/icon");

    // The icon is the PNG reported, served as a PNG that browsers do not sniff.
    auto token = server.session_token("carol", "carol-pw");
    REQUIRE(token);
    httplib::Client http(server.url());
    http.set_ca_cert_path(server.ca_file().string());
    http.set_bearer_token_auth(*token);
    auto icon = http.Get(payroll["icon_url"].get<std::string>());
    REQUIRE(icon);
    CHECK(icon->status == 200);
    CHECK(icon->get_header_value("Content-Type") == "image/png");
    CHECK(icon->get_header_value("X-Content-Type-Options") == "nosniff");
    Bytes png = icon_png();
    CHECK(icon->body == std::string(png.begin(), png.end()));
    CHECK(http.Get("/v1/admin/images/payroll/versions/1/apps/clock/icon")->status == 404);
    CHECK(http.Get("/v1/admin/images/payroll/versions/1/apps/payroll/icon",
                   httplib::Headers{{"Authorization", "Bearer " + alice.token}})
              ->status == 403);

    // A later report for a version replaces the earlier one.
    REQUIRE(agent->put("/v1/agent/images/payroll/versions/1/apps", report({payroll_app()})));
    auto replaced = admin->get("/v1/admin/images/payroll/apps?version=1");
    REQUIRE(replaced);
    CHECK((*replaced)["apps"].size() == 1);

    // heirloom-admin lists them.
    auto listed = test::run_admin(d.dir / "home", {"image", "apps", "payroll", "--version", "1"});
    INFO(listed.err);
    REQUIRE(listed.exit_code == 0);
    CHECK_THAT(listed.out, Catch::Contains("payroll version 1: reported") &&
                               Catch::Contains("alice") &&
                               Catch::Contains("application/x-payroll") &&
                               Catch::Contains("C:\\Apps\\Payroll\\PAYROLL.EXE"));
    CHECK_THAT(listed.out, Catch::Matches("(.|\n)*payroll +Payroll +yes +application/x-payroll "
                                          "+C:\\\\Apps(.|\n)*"));
    auto json = test::run_admin(d.dir / "home", {"image", "apps", "payroll", "--json"});
    REQUIRE(json.exit_code == 0);
    auto doc = parse_json(json.out);
    REQUIRE(doc);
    CHECK((*doc)["version"] == 2);
    auto nothing = test::run_admin(d.dir / "home", {"image", "apps", "cad"});
    REQUIRE(nothing.exit_code == 0);
    CHECK_THAT(nothing.out, Catch::Contains("no guest has reported apps for cad"));
    auto unknown = test::run_admin(d.dir / "home", {"image", "apps", "nosuch"});
    CHECK(unknown.exit_code == 1);
    CHECK_THAT(unknown.err, Catch::Contains("no image nosuch"));
}

TEST_CASE("server apps: hostile and unauthorised reports are refused",
          "[server][apps][integration]") {
    test::Slapd slapd;
    HL_SKIP_UNLESS_RUNNING(slapd);
    test::HeirloomServer server(slapd);
    HL_SKIP_UNLESS_RUNNING(server);
    AppsDeployment d;
    d.set_up(server);
    auto alice = test::enrol(server, "alice", "alice-pw", "pc-alice");
    const std::string path = "/v1/agent/images/payroll/versions/1/apps";
    auto refused = [&](Json app, int status, const std::string& message) {
        auto [code, error] = put_raw(server, alice.token, path, report({app}).dump());
        INFO(app.dump().substr(0, 300) << " -> " << code << " " << error);
        CHECK(code == status);
        CHECK_THAT(error, Catch::Contains(message));
    };

    Json app = payroll_app();
    app["id"] = "../../etc/passwd";
    refused(app, 400, "apps[0].id");
    app = payroll_app();
    app["name"] = std::string(4000, 'N');
    refused(app, 400, "128 bytes");
    app = payroll_app();
    app["name"] = "Pay\u202Egpj.exe";
    refused(app, 400, "bidirectional");
    app = payroll_app();
    app["icon_png_base64"] = guest::base64_encode(as_bytes("<svg onload=alert(1)>"));
    refused(app, 400, "not a PNG");
    app = payroll_app();
    Bytes bomb = icon_png();
    bomb[16] = 0x10; // IHDR width 268 million
    app["icon_png_base64"] = guest::base64_encode(bomb);
    refused(app, 400, "pixels");
    app = payroll_app();
    app["file_types"] = {"text/html\r\nX-Injected: 1"};
    refused(app, 400, "MIME");

    // Too many apps, and a body past the limit (refused before it is read).
    Json many = {{"apps", Json::array()}};
    for (int i = 0; i < 300; ++i)
        many["apps"].push_back({{"id", "a" + std::to_string(i)},
                                {"name", "A"},
                                {"command", "/bin/true"},
                                {"file_types", Json::array()}});
    auto [many_code, many_error] = put_raw(server, alice.token, path, many.dump());
    CHECK(many_code == 400);
    CHECK_THAT(many_error, Catch::Contains("256 apps"));
    // A report may be larger than the 1 MiB other requests may (it reaches the parser), but
    // one that says it is over 8 MiB is refused before its body is read.
    auto [two_code, two_error] =
        put_raw(server, alice.token, path, std::string(2u << 20, ' ') + "[]");
    CHECK(two_code == 400);
    CHECK_THAT(two_error, Catch::Contains("expected a JSON object"));
    std::string big = declared_length_answer(server, alice.token, path, 9u << 20);
    CHECK_THAT(big, Catch::StartsWith("HTTP/1.1 413") && Catch::Contains("too large"));

    // A version that was never pushed, an image the user is not given, no agent.
    auto [v_code, v_error] =
        put_raw(server, alice.token, "/v1/agent/images/payroll/versions/9/apps",
                report({payroll_app()}).dump());
    CHECK(v_code == 404);
    CHECK_THAT(v_error, Catch::Contains("no version 9"));
    auto [cad_code, cad_error] =
        put_raw(server, alice.token, "/v1/agent/images/cad/versions/1/apps",
                report({payroll_app()}).dump());
    CHECK(cad_code == 403);
    CHECK_THAT(cad_error, Catch::Contains("not assigned to alice"));
    auto carol = server.session_token("carol", "carol-pw");
    REQUIRE(carol);
    auto [admin_code, admin_error] = put_raw(server, *carol, path, report({}).dump());
    CHECK(admin_code == 403);
    CHECK_THAT(admin_error, Catch::Contains("enrolled agents"));
    auto [anon_code, anon_error] = put_raw(server, "", path, report({}).dump());
    CHECK(anon_code == 401);

    // Nothing of it was stored.
    auto admin = server.login("carol", "carol-pw");
    auto listed = admin->get("/v1/admin/images/payroll/apps");
    REQUIRE(listed);
    CHECK((*listed)["apps"].empty());
    // And an agent cannot read the admin list.
    auto agent = test::agent_client(server, alice);
    auto denied = agent->get("/v1/admin/images/payroll/apps");
    REQUIRE_FALSE(denied);
    CHECK(denied.error().code == Errc::denied);
}
