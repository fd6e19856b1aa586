// The admin API takes an administrator's login session, never an agent token: an admin who
// also enrolled an endpoint has a token on that endpoint's disk, and that token must not
// manage the organisation. Every /v1/admin/* route the server registers (read from its route
// table in image-server/src/server/service.cpp) and every one docs/api.md documents gets a
// request here; each is refused to carol's agent token and passes the gate with her session.

#include "support/server_deployment.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cctype>
#include <map>
#include <regex>
#include <sstream>

using namespace heirloom;

namespace {

struct AdminRequest {
    std::string method; // GET, PUT, POST, DELETE
    std::string path;
};

// One request on each admin route, with names that exist nowhere (the session's requests
// then change nothing).
std::vector<AdminRequest> admin_requests() {
    std::vector<AdminRequest> r = {{"GET", "/v1/admin/policy"}, {"PUT", "/v1/admin/policy"}};
    for (std::string items : {"workspaces", "apps", "assignments", "image-settings"}) {
        r.push_back({"GET", "/v1/admin/" + items});
        r.push_back({"PUT", "/v1/admin/" + items + "/gate-test"});
        r.push_back({"DELETE", "/v1/admin/" + items + "/gate-test"});
    }
    std::string chunk = "chunks/aa/" + std::string(64, 'a');
    for (const AdminRequest& a : std::vector<AdminRequest>{
             {"GET", "/v1/admin/images"},
             {"POST", "/v1/admin/images"},
             {"GET", "/v1/admin/images/gate-test/key"},
             {"POST", "/v1/admin/images/gate-test/missing"},
             {"PUT", "/v1/admin/images/gate-test/objects/" + chunk},
             {"PUT", "/v1/admin/images/gate-test/versions/1"},
             {"GET", "/v1/admin/images/gate-test/apps"},
             {"GET", "/v1/admin/images/gate-test/versions/1/apps/gate-test/icon"},
             {"GET", "/v1/admin/directory/users"},
             {"GET", "/v1/admin/directory/groups"},
             {"GET", "/v1/admin/effective/alice"},
             {"GET", "/v1/admin/endpoints"},
             {"DELETE", "/v1/admin/endpoints/gate-test"},
             {"GET", "/v1/admin/events"},
         })
        r.push_back(a);
    return r;
}

std::string read_source(const fs::path& rel) {
    auto text = read_text_file(fs::path(HEIRLOOM_SOURCE_DIR) / rel, 1 << 20);
    REQUIRE(text);
    return *text;
}

// The admin routes service.cpp registers (server.Get("/v1/admin/" + items, ...)), as method
// and the path regex httplib matches, with its named pieces (const std::string id = "...")
// filled in.
std::vector<AdminRequest> registered_admin_routes() {
    std::string source = read_source("image-server/src/server/service.cpp");
    std::map<std::string, std::string> pieces;
    std::regex piece(R"re(const std::string (\w+) = "([^"]*)";)re");
    for (std::sregex_iterator it(source.begin(), source.end(), piece), end; it != end; ++it)
        pieces[(*it)[1]] = (*it)[2];
    std::vector<AdminRequest> routes;
    std::regex call(R"(server\.(Get|Put|Post|Delete)\()");
    for (std::sregex_iterator it(source.begin(), source.end(), call), end; it != end; ++it) {
        // The first argument: string literals and named pieces joined by +.
        std::size_t at = static_cast<std::size_t>(it->position() + it->length());
        std::string pattern;
        for (;;) {
            while (at < source.size() && std::isspace(static_cast<unsigned char>(source[at])))
                ++at;
            if (source[at] == '"') {
                std::size_t close = source.find('"', at + 1);
                pattern += source.substr(at + 1, close - at - 1);
                at = close + 1;
            } else {
                std::size_t start = at;
                while (at < source.size() &&
                       (std::isalnum(static_cast<unsigned char>(source[at])) || source[at] == '_'))
                    ++at;
                std::string name = source.substr(start, at - start);
                INFO("route piece '" << name << "' in service.cpp");
                REQUIRE(pieces.contains(name));
                pattern += pieces[name];
            }
            while (at < source.size() && std::isspace(static_cast<unsigned char>(source[at])))
                ++at;
            if (source[at] != '+')
                break;
            ++at;
        }
        if (!pattern.starts_with("/v1/admin"))
            continue;
        std::string method = (*it)[1];
        std::transform(method.begin(), method.end(), method.begin(), ::toupper);
        routes.push_back({method, pattern});
    }
    return routes;
}

// The admin routes docs/api.md lists ("- `GET /v1/admin/images/NAME/key` → ..."), with their
// placeholders (NAME, COLLECTION, PATH...) as regexes.
std::vector<AdminRequest> documented_admin_routes() {
    std::string doc = read_source("docs/api.md");
    std::vector<AdminRequest> routes;
    std::regex route(R"(^- `(GET|PUT|POST|DELETE) (/v1/admin/[^` ?\[]*))");
    std::istringstream lines(doc);
    std::smatch m;
    for (std::string line; std::getline(lines, line);)
        if (std::regex_search(line, m, route))
            routes.push_back({m[1], std::regex_replace(m[2].str(), std::regex("[A-Z]+"), ".+")});
    return routes;
}

bool covered(const AdminRequest& route, const std::vector<AdminRequest>& requests) {
    std::regex pattern(route.path);
    return std::any_of(requests.begin(), requests.end(), [&](const AdminRequest& q) {
        return q.method == route.method && std::regex_match(q.path, pattern);
    });
}

Result<Json> send(client::ApiClient& api, const AdminRequest& q) {
    if (q.method == "GET")
        return api.get(q.path);
    if (q.method == "POST")
        return api.post(q.path, Json::object());
    if (q.method == "DELETE")
        return api.del(q.path);
    if (q.path.find("/objects/") != std::string::npos ||
        q.path.find("/versions/") != std::string::npos)
        return api.put_bytes(q.path, as_bytes(std::string("not an object")));
    return api.put(q.path, Json::object());
}

} // namespace

TEST_CASE("admin API: the requests below cover every admin route, in the code and the docs",
          "[server][admin]") {
    auto requests = admin_requests();
    auto registered = registered_admin_routes();
    CHECK(registered.size() >= 15); // the parse found the table
    for (const auto& route : registered) {
        INFO("service.cpp registers " << route.method << " " << route.path
                                      << "; add a request for it to admin_requests()");
        CHECK(covered(route, requests));
    }
    auto documented = documented_admin_routes();
    CHECK(documented.size() >= 15);
    for (const auto& route : documented) {
        INFO("docs/api.md documents " << route.method << " " << route.path
                                      << "; add a request for it to admin_requests()");
        CHECK(covered(route, requests));
    }
    // And each request is on a route the server has.
    for (const auto& q : requests) {
        INFO(q.method << " " << q.path << " matches no route service.cpp registers");
        CHECK(std::any_of(registered.begin(), registered.end(), [&](const AdminRequest& route) {
            return route.method == q.method && std::regex_match(q.path, std::regex(route.path));
        }));
    }
}

TEST_CASE("admin API: an admin's agent token is refused on every admin route",
          "[server][admin][integration]") {
    test::Slapd slapd;
    HL_SKIP_UNLESS_RUNNING(slapd);
    test::HeirloomServer server(slapd);
    HL_SKIP_UNLESS_RUNNING(server);
    // Carol administers Heirloom and enrolled her own endpoint too.
    auto enrolment = test::enrol(server, "carol", "carol-pw", "pc-carol");
    REQUIRE(test::agent_client(server, enrolment)->get_text("/v1/agent/policy")); // a good token
    auto session = server.session_token("carol", "carol-pw");
    REQUIRE(session);

    // Each request on a connection of its own: today the server leaves a refused upload's
    // body unread on a kept-alive connection, where it is taken for the next request (a
    // separate bug, not the gate's).
    for (const auto& q : admin_requests()) {
        auto r = send(*test::agent_client(server, enrolment), q);
        INFO(q.method << " " << q.path
                      << " with carol's agent token: " << (r ? r->dump() : r.error().message));
        CHECK_FALSE(r);
        if (r)
            continue;
        CHECK(r.error().code == Errc::denied);
        CHECK_THAT(r.error().message, Catch::Contains("with a login session"));
    }
    // Nothing the token asked for happened, and the token still works where it belongs.
    CHECK(test::agent_client(server, enrolment)->get_text("/v1/agent/policy"));

    // Her login session passes the same gate on every one (what follows is the route's own
    // answer: not found, invalid, or done).
    for (const auto& q : admin_requests()) {
        auto as_admin = server.client();
        as_admin->set_token(*session);
        auto r = send(*as_admin, q);
        INFO(q.method << " " << q.path
                      << " with carol's session: " << (r ? r->dump() : r.error().message));
        CHECK((r || r.error().code != Errc::denied));
    }
}
