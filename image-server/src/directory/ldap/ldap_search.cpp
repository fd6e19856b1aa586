// LdapSession::search: subtree searches in pages (RFC 2696), each entry's wanted attributes
// read within the caps of ldap_internal.hpp.

#include "ldap_internal.hpp"
#include "ldap_session.hpp"

#include <algorithm>
#include <ldap.h>
#include <memory>

namespace heirloom::server::ldap_backend {

namespace {

bool wanted_attribute(const SearchRequest& request, const std::string& lower_name) {
    return std::any_of(request.attributes.begin(), request.attributes.end(),
                       [&](const std::string& a) { return lower_ascii(a) == lower_name; });
}

LdapEntry read_entry(LDAP* ld, LDAPMessage* message, const SearchRequest& request) {
    LdapEntry entry;
    if (char* dn = ldap_get_dn(ld, message)) {
        entry.dn = dn;
        ldap_memfree(dn);
    }
    BerElement* ber = nullptr;
    for (char* attribute = ldap_first_attribute(ld, message, &ber); attribute != nullptr;
         attribute = ldap_next_attribute(ld, message, ber)) {
        std::string name = lower_ascii(attribute);
        ldap_memfree(attribute);
        const bool seen = std::any_of(entry.attributes.begin(), entry.attributes.end(),
                                      [&](const auto& a) { return a.first == name; });
        if (seen || !wanted_attribute(request, name))
            continue;
        berval** values = ldap_get_values_len(ld, message, name.c_str());
        std::vector<std::string> kept;
        for (std::size_t i = 0; values != nullptr && values[i] != nullptr; ++i) {
            if (kept.size() == max_values_per_attribute)
                break;
            if (values[i]->bv_val == nullptr || values[i]->bv_len > max_value_bytes)
                continue;
            kept.emplace_back(values[i]->bv_val, values[i]->bv_len);
        }
        if (values != nullptr)
            ldap_value_free_len(values);
        entry.attributes.emplace_back(std::move(name), std::move(kept));
    }
    if (ber != nullptr)
        ber_free(ber, 0);
    return entry;
}

} // namespace

namespace {

struct ControlsFree {
    void operator()(LDAPControl** controls) const { ldap_controls_free(controls); }
};
using ControlsPtr = std::unique_ptr<LDAPControl*, ControlsFree>;
struct ControlFree {
    void operator()(LDAPControl* control) const { ldap_control_free(control); }
};
using ControlPtr = std::unique_ptr<LDAPControl, ControlFree>;

// Entries asked for per page of a paged search (RFC 2696). Active Directory answers at most
// 1,000 entries per search (MaxPageSize) without the control.
constexpr int page_size = 500;

} // namespace

Result<SearchResult> LdapSession::search(const SearchRequest& request) {
    std::vector<std::string> attribute_names = request.attributes;
    if (attribute_names.empty())
        attribute_names.emplace_back(LDAP_NO_ATTRS); // "1.1": the DNs only
    std::vector<char*> attributes;
    for (auto& name : attribute_names)
        attributes.push_back(name.data());
    attributes.push_back(nullptr);
    const std::string doing = "search under " + printable(request.base);
    const std::size_t cap = std::min(
        request.size_limit > 0 ? static_cast<std::size_t>(request.size_limit) : max_entries,
        max_entries);
    // Subtree searches ask for pages (a non-critical control: a directory without paging
    // answers in one go); a base search has one entry at most.
    const bool paged = request.scope == Scope::subtree;
    std::string cookie;
    SearchResult result;
    for (;;) {
        ControlPtr page_control;
        if (paged) {
            berval cookie_value{};
            cookie_value.bv_len = cookie.size();
            cookie_value.bv_val = cookie.data();
            LDAPControl* made = nullptr;
            const int rc = ldap_create_page_control(
                ld_, page_size, cookie.empty() ? nullptr : &cookie_value, 0, &made);
            if (rc != LDAP_SUCCESS)
                return std::unexpected(local_error(rc, doing));
            page_control.reset(made);
        }
        LDAPControl* server_controls[] = {page_control.get(), nullptr};
        timeval time_limit{timeout_seconds_, 0};
        int msgid = 0;
        int rc = ldap_search_ext(
            ld_, request.base.c_str(),
            request.scope == Scope::base ? LDAP_SCOPE_BASE : LDAP_SCOPE_SUBTREE,
            request.filter.c_str(), attributes.data(), 0, paged ? server_controls : nullptr,
            nullptr, &time_limit, request.size_limit, &msgid);
        if (rc != LDAP_SUCCESS)
            return std::unexpected(local_error(rc, doing));
        LDAPMessage* raw = nullptr;
        HL_TRY(wait_for(msgid, doing, &raw));
        MessagePtr chain(raw);

        bool done = false;
        int code = LDAP_OTHER;
        std::string detail;
        ControlsPtr returned;
        for (LDAPMessage* m = ldap_first_message(ld_, chain.get()); m != nullptr;
             m = ldap_next_message(ld_, m)) {
            const int type = ldap_msgtype(m);
            if (type == LDAP_RES_SEARCH_ENTRY) {
                if (result.entries.size() < cap)
                    result.entries.push_back(read_entry(ld_, m, request));
                else
                    result.truncated = true;
            } else if (type == LDAP_RES_SEARCH_RESULT && !done) {
                char* text = nullptr;
                LDAPControl** controls = nullptr;
                rc = ldap_parse_result(ld_, m, &code, nullptr, &text, nullptr, &controls, 0);
                detail = take_ldap_string(text);
                returned.reset(controls);
                if (rc != LDAP_SUCCESS)
                    return std::unexpected(local_error(rc, doing));
                done = true;
            }
            // Search references (referrals) are ignored: they are not followed.
        }
        if (!done)
            return fail(Errc::network,
                        "directory " + description_ + " ended the " + doing + " without a result");
        switch (code) {
        case LDAP_SUCCESS:
            break;
        case LDAP_SIZELIMIT_EXCEEDED:
        case LDAP_ADMINLIMIT_EXCEEDED:
            result.truncated = true;
            return result;
        case LDAP_NO_SUCH_OBJECT:
            result.entries.clear();
            result.base_missing = true;
            return result;
        case LDAP_TIMELIMIT_EXCEEDED:
            return std::unexpected(timeout_error(doing));
        default: {
            std::string hint;
            if (code == LDAP_INSUFFICIENT_ACCESS)
                hint = ": check that bind_dn may read users and groups";
            else if (code == LDAP_CONFIDENTIALITY_REQUIRED || code == LDAP_STRONG_AUTH_REQUIRED)
                hint = ": the directory wants TLS or a bind first";
            return fail(Errc::network, "directory " + description_ + " refused the " + doing +
                                           ": " + ldap_err2string(code) +
                                           (detail.empty() ? "" : " (" + detail + ")") + hint);
        }
        }
        // The next page, if the directory said there is one and more entries are wanted.
        LDAPControl* response =
            returned ? ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, returned.get(), nullptr)
                     : nullptr;
        if (!paged || response == nullptr)
            return result;
        berval next{};
        ber_int_t estimate = 0;
        if (ldap_parse_pageresponse_control(ld_, response, &estimate, &next) != LDAP_SUCCESS)
            return fail(Errc::network, "directory " + description_ +
                                           " sent a damaged paged-results control (" + doing + ")");
        cookie.assign(next.bv_val != nullptr ? next.bv_val : "", next.bv_len);
        if (next.bv_val != nullptr)
            ber_memfree(next.bv_val);
        if (cookie.empty())
            return result;
        if (result.truncated || result.entries.size() >= cap) {
            result.truncated = true; // more pages wait: there are more entries than wanted
            return result;
        }
    }
}

} // namespace heirloom::server::ldap_backend
