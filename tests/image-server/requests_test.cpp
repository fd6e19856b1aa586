// The parsers for what clients send the server: strict, bounded, and never fooled.

#include "heirloom/common/events.hpp"
#include "heirloom/common/file.hpp"
#include "heirloom/server/config.hpp"
#include "heirloom/server/image_store.hpp"
#include "heirloom/server/requests.hpp"

#include <catch2/catch.hpp>
#include <filesystem>
#include <regex>

using namespace heirloom;
using namespace heirloom::server;

TEST_CASE("requests: logins and enrolments", "[server][requests]") {
    auto ok = parse_login(R"({"user":"alice","password":"pw"})");
    REQUIRE(ok);
    CHECK(ok->user == "alice");
    CHECK(ok->password == "pw");
    auto enrol = parse_enrol(R"({"user":"alice","password":"pw","hostname":"pc-1"})");
    REQUIRE(enrol);
    CHECK(enrol->hostname == "pc-1");

    auto empty = parse_login(R"({"user":"alice","password":""})");
    REQUIRE_FALSE(empty);
    CHECK(empty.error().code == Errc::invalid_argument);
    CHECK(empty.error().message.find("empty passwords") != std::string::npos);
    for (const std::string& bad : std::vector<std::string>{
             "",
             "{",
             "[]",
             "\"x\"",
             R"({"user":"alice"})",
             R"({"password":"pw"})",
             R"({"user":"","password":"pw"})",
             R"({"user":1,"password":"pw"})",
             R"({"user":"alice","password":"pw","admin":true})",
             R"({"user":"a\nb","password":"pw"})",
             R"({"user":"a\u0000b","password":"pw"})",
             R"({"user":"alice","password":"pw","hostname":"pc"})",
         })
        CHECK_FALSE(parse_login(bad));
    CHECK_FALSE(parse_login(R"({"user":")" + std::string(300, 'a') + R"(","password":"pw"})"));
    CHECK_FALSE(parse_login(R"({"user":"alice","password":")" + std::string(2000, 'p') + "\"}"));
    CHECK_FALSE(parse_enrol(R"({"user":"alice","password":"pw"})"));
    CHECK_FALSE(parse_enrol(R"({"user":"alice","password":"pw","hostname":"pc\r\n1"})"));
    CHECK_FALSE(parse_login(std::string(2u << 20, ' ')));
}

TEST_CASE("requests: the body of a Kerberos login or enrolment", "[server][requests][kerberos]") {
    CHECK(parse_negotiated("", false) == std::string());
    CHECK(parse_negotiated("{}", false) == std::string());
    CHECK(parse_negotiated(R"({"hostname":"pc-1"})", true) == std::string("pc-1"));
    // The user comes from the ticket: a body naming one, or a password, is refused.
    for (const char* bad : {R"({"user":"alice"})", R"({"password":"pw"})", "[]", "{", "\"x\"",
                            R"({"hostname":"pc"})"})
        CHECK_FALSE(parse_negotiated(bad, false));
    for (const char* bad : {"{}", R"({"hostname":""})", R"({"hostname":"pc\r\n1"})",
                            R"({"hostname":1})", R"({"hostname":"pc","user":"alice"})"})
        CHECK_FALSE(parse_negotiated(bad, true));
    CHECK_FALSE(parse_negotiated(std::string(2u << 20, ' '), true));
}

TEST_CASE("requests: event reports", "[server][requests]") {
    auto ok = parse_events(
        R"({"events":[{"type":"sync-done","time":10,"workspace":"ws","image":"payroll","version":7,"message":"fine"},{"type":"launch","time":11}]})");
    REQUIRE(ok);
    REQUIRE(ok->size() == 2);
    CHECK((*ok)[0].version == 7);
    CHECK((*ok)[1].image.empty());
    for (const std::string& bad : std::vector<std::string>{
             R"({"events":{}})",
             R"({"events":[1]})",
             R"({"events":[{"type":"boom","time":1}]})",
             R"({"events":[{"type":"launch"}]})",
             R"({"events":[{"type":"launch","time":-5}]})",
             R"({"events":[{"type":"launch","time":1,"image":"../../etc"}]})",
             R"({"events":[{"type":"launch","time":1,"version":-1}]})",
             R"({"events":[{"type":"launch","time":1,"extra":1}]})",
             R"({"events":[{"type":"launch","time":1,"message":"a\u0007b"}]})",
             R"({"other":[]})",
         })
        CHECK_FALSE(parse_events(bad));
    std::string many = R"({"events":[)";
    for (std::size_t i = 0; i <= max_events_per_report; ++i)
        many += std::string(i ? "," : "") + R"({"type":"launch","time":1})";
    CHECK_FALSE(parse_events(many + "]}"));
}

// An agent whose event the server refused would hold back every event queued behind it.
TEST_CASE("requests: the server takes every event type an agent sends", "[server][requests]") {
    for (std::string_view type : agent_event_types) {
        INFO(type);
        CHECK(parse_events(R"({"events":[{"type":")" + std::string(type) + R"(","time":1}]})"));
    }
    // Every event("...") the agent's sources name is in the shared list.
    std::regex literal(R"re(\bevent\("([a-z-]+)")re");
    std::size_t seen = 0;
    for (const auto& file : std::filesystem::directory_iterator(
             std::filesystem::path(HEIRLOOM_SOURCE_DIR) / "agent" / "src")) {
        auto text = read_text_file(file.path(), 1 << 22);
        REQUIRE(text);
        for (std::sregex_iterator m(text->begin(), text->end(), literal), end; m != end;
             ++m, ++seen) {
            INFO(file.path().filename().string() << ": " << (*m)[1]);
            CHECK(is_agent_event_type((*m)[1].str()));
        }
    }
    CHECK(seen > 10);
}

TEST_CASE("requests: bearer tokens", "[server][requests]") {
    std::string hex(64, 'a');
    auto session = parse_bearer("Bearer s." + hex);
    REQUIRE(session);
    CHECK(session->kind == TokenKind::session);
    auto agent = parse_bearer("Bearer a." + hex);
    REQUIRE(agent);
    CHECK(agent->kind == TokenKind::agent);
    for (const std::string& bad :
         std::vector<std::string>{std::string(), "Bearer", "Bearer s." + hex.substr(1),
                                  "Bearer x." + hex, "Basic s." + hex, "Bearer s." + hex + "a",
                                  "Bearer s." + std::string(63, 'a') + "G", "bearer s." + hex}) {
        auto r = parse_bearer(bad);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == Errc::crypto);
    }
}

TEST_CASE("requests: object paths an admin may upload", "[server][requests]") {
    std::string id(64, 'a'), other(64, 'b');
    CHECK(uploadable_object_path("chunks/aa/" + id));
    CHECK(uploadable_object_path("deltas/bb/" + other + "-" + id));
    for (const std::string& bad : std::vector<std::string>{
             "chunks/ab/" + id, "chunks/AA/" + std::string(64, 'A'), "chunks/aa/" + id + "/",
             "chunks/aa/" + id.substr(1), "chunks/aa/../" + id.substr(3), "images/x/latest",
             "deltas/bb/" + other + "_" + id, "/chunks/aa/" + id, "chunks/aa/" + id + "\n"})
        CHECK_FALSE(uploadable_object_path(bad));
}

TEST_CASE("requests: event filters and version numbers", "[server][requests]") {
    auto f = parse_event_filter(
        {{"since", "10"}, {"type", "launch"}, {"limit", "5"}, {"format", "csv"}});
    REQUIRE(f);
    CHECK(f->since == 10);
    CHECK(f->limit == 5);
    CHECK_FALSE(parse_event_filter({{"since", "-1"}}));
    CHECK_FALSE(parse_event_filter({{"type", "nope"}}));
    CHECK_FALSE(parse_event_filter({{"user", "a\nb"}}));
    CHECK_FALSE(parse_event_filter({{"limit", "100000000"}}));
    CHECK_FALSE(parse_event_filter({{"drop", "table"}}));
    CHECK(parse_version_number("7") == 7u);
    for (const std::string& bad :
         std::vector<std::string>{"", "0", "07", "-1", "1e3", "99999999999999999999", " 1"})
        CHECK_FALSE(parse_version_number(bad));
}

TEST_CASE("config: the file is strict and secrets come from files", "[server][config]") {
    auto c = parse_config(R"({"listen":"127.0.0.1:9443","data_dir":"/srv/h","plain_http":true,
        "directory":{"uri":"ldaps://dc:636","tls":"ldaps","base_dn":"dc=x","membership":"posix",
                     "timeout_seconds":3},
        "limits":{"max_connections":50,"header_timeout_seconds":4},"log_level":"warn"})");
    REQUIRE(c);
    CHECK(c->listen_host == "127.0.0.1");
    CHECK(c->listen_port == 9443);
    CHECK(c->directory.tls == DirectoryTls::ldaps);
    CHECK(c->directory.membership == GroupMembership::posix);
    CHECK(c->max_connections == 50);
    CHECK(c->log_level == LogLevel::warn);
    REQUIRE(finish_config(*c));

    for (const std::string& bad : std::vector<std::string>{
             R"({"listen":"nowhere"})",
             R"({"listen":"host:99999"})",
             R"({"colour":"blue"})",
             R"({"directory":{"password":"secret"}})",
             R"({"directory":{"tls":"maybe"}})",
             R"({"limits":{"max_connections":0}})",
             R"({"plain_http":"yes"})",
             R"([1])",
             R"({"log_level":"loud"})",
         }) {
        auto r = parse_config(bad);
        INFO(bad);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == Errc::invalid_argument);
    }
    auto unknown = parse_config(R"({"directory":{"password":"secret"}})");
    CHECK(unknown.error().message.find("directory.password: unknown setting") != std::string::npos);

    ServerConfig no_tls;
    no_tls.directory.uri = "ldap://dc";
    no_tls.directory.base_dn = "dc=x";
    auto refused = finish_config(no_tls);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().message.find("TLS") != std::string::npos);
    ServerConfig no_password = no_tls;
    no_password.plain_http = true;
    no_password.directory.bind_dn = "cn=svc";
    CHECK_FALSE(finish_config(no_password));
}
