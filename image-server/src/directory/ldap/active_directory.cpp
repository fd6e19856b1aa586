#include "active_directory.hpp"

#include "dn.hpp"
#include "ldap_session.hpp"

#include <algorithm>
#include <charconv>
#include <limits>

namespace heirloom::server::ldap_backend {

namespace {

std::string lower(std::string_view text) {
    std::string out(text);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z')
            c = static_cast<char>(c - 'A' + 'a');
    return out;
}

template <typename T> std::optional<T> parse_number(std::string_view text, int base = 10) {
    T value{};
    if (text.empty())
        return std::nullopt;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
    if (ec != std::errc() || end != text.data() + text.size())
        return std::nullopt;
    return value;
}

} // namespace

std::optional<AdLoginName> parse_ad_login_name(std::string_view typed) {
    AdLoginName login;
    const std::size_t slash = typed.find('\\');
    if (slash != std::string_view::npos) {
        login.form = AdLoginName::Form::down_level;
        login.domain = std::string(typed.substr(0, slash));
        login.name = std::string(typed.substr(slash + 1));
        if (login.domain.empty() || login.name.empty() ||
            login.name.find_first_of("\\@") != std::string::npos)
            return std::nullopt;
        return login;
    }
    const std::size_t at = typed.find('@');
    login.name = std::string(typed);
    if (at == std::string_view::npos)
        return login;
    if (at == 0 || at + 1 == typed.size())
        return std::nullopt;
    login.form = AdLoginName::Form::principal;
    return login;
}

bool is_own_domain(const DirectoryConfig& config, std::string_view domain) {
    std::string own = config.netbios_domain;
    if (own.empty())
        own = first_rdn_value(config.base_dn, "dc").value_or("");
    return !own.empty() && lower(own) == lower(domain);
}

std::string ad_bind_refusal(std::string_view diagnostic) {
    const std::size_t at = diagnostic.find("data ");
    if (at == std::string_view::npos)
        return {};
    std::string_view code = diagnostic.substr(at + 5);
    code = code.substr(0, std::min(code.find_first_of(", "), code.size()));
    const auto value = parse_number<unsigned>(code, 16);
    if (!value || code.size() > 8)
        return {};
    const char* what = nullptr;
    switch (*value) {
    case 0x525:
        what = "no such user";
        break;
    case 0x52e:
        what = "wrong password";
        break;
    case 0x530:
        what = "not permitted to log on at this time";
        break;
    case 0x531:
        what = "not permitted to log on at this workstation";
        break;
    case 0x532:
        what = "password expired";
        break;
    case 0x533:
        what = "account disabled";
        break;
    case 0x568:
        what = "too many security IDs";
        break;
    case 0x701:
        what = "account expired";
        break;
    case 0x773:
        what = "must change password";
        break;
    case 0x775:
        what = "account locked";
        break;
    default:
        return {};
    }
    return std::string(what) + " (AD " + lower(code) + ")";
}

std::string ad_account_problem(const LdapEntry& user, std::int64_t now) {
    constexpr std::uint32_t disabled_bit = 0x2;
    for (const auto& text : user.values("userAccountControl"))
        if (auto flags = parse_number<std::int64_t>(text);
            flags && (static_cast<std::uint64_t>(*flags) & disabled_bit) != 0)
            return "disabled";
    // accountExpires: 100 ns intervals since 1601; 0 and the largest value mean never.
    constexpr std::int64_t unix_epoch_in_filetime = 116444736000000000;
    for (const auto& text : user.values("accountExpires")) {
        const auto expires = parse_number<std::int64_t>(text);
        if (!expires || *expires <= 0 || *expires == std::numeric_limits<std::int64_t>::max())
            continue;
        if (*expires < unix_epoch_in_filetime ||
            (*expires - unix_epoch_in_filetime) / 10'000'000 <= now)
            return "expired";
    }
    return {};
}

std::optional<std::string> primary_group_sid(std::string_view user_sid,
                                             std::string_view primary_group_id) {
    // Revision 1, a count of sub-authorities, a 6-byte authority, then the sub-authorities
    // (32-bit little-endian), the last of which is the account's relative ID.
    if (user_sid.size() < 12 || user_sid[0] != 1)
        return std::nullopt;
    const auto count = static_cast<unsigned char>(user_sid[1]);
    if (count < 1 || count > 15 || user_sid.size() != 8 + 4 * std::size_t{count})
        return std::nullopt;
    const auto rid = parse_number<std::uint32_t>(primary_group_id);
    if (!rid)
        return std::nullopt;
    std::string sid(user_sid);
    for (int i = 0; i < 4; ++i)
        sid[sid.size() - 4 + i] = static_cast<char>((*rid >> (8 * i)) & 0xff);
    return sid;
}

std::string binary_filter_value(std::string_view bytes) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : bytes) {
        out += '\\';
        out += hex[c >> 4];
        out += hex[c & 0xf];
    }
    return out;
}

} // namespace heirloom::server::ldap_backend
