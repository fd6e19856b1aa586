#include "sqlite.hpp"

namespace heirloom::server::sql {
namespace {

std::unexpected<Error> sqlite_error(sqlite3* db, std::string_view what) {
    return fail(Errc::io, "metadata database: " + std::string(what) + ": " + sqlite3_errmsg(db));
}

} // namespace

Result<Statement> Statement::prepare(sqlite3* db, std::string_view sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr) !=
        SQLITE_OK)
        return sqlite_error(db, "prepare");
    return Statement(stmt, db);
}

Statement::~Statement() {
    if (stmt_)
        sqlite3_finalize(stmt_);
}

Statement& Statement::bind(int index, std::int64_t value) {
    sqlite3_bind_int64(stmt_, index, value);
    return *this;
}

Statement& Statement::bind(int index, std::string_view value) {
    sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
    return *this;
}

Statement& Statement::bind(int index, ByteView value) {
    sqlite3_bind_blob64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT);
    return *this;
}

Result<bool> Statement::step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW)
        return true;
    if (rc == SQLITE_DONE)
        return false;
    if (rc == SQLITE_CONSTRAINT)
        return fail(Errc::conflict, std::string("metadata database: ") + sqlite3_errmsg(db_));
    return sqlite_error(db_, "step");
}

Status Statement::run() {
    while (HL_TRY(step())) {
    }
    return {};
}

void Statement::reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
}

std::int64_t Statement::integer(int column) const {
    return sqlite3_column_int64(stmt_, column);
}

std::string Statement::text(int column) const {
    const auto* p = sqlite3_column_text(stmt_, column);
    int n = sqlite3_column_bytes(stmt_, column);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n))
             : std::string();
}

Bytes Statement::blob(int column) const {
    const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, column));
    int n = sqlite3_column_bytes(stmt_, column);
    return p ? Bytes(p, p + n) : Bytes();
}

Status exec(sqlite3* db, std::string_view sql) {
    std::string owned(sql);
    char* message = nullptr;
    if (sqlite3_exec(db, owned.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
        std::string text = message ? message : "unknown error";
        sqlite3_free(message);
        return fail(Errc::io, "metadata database: " + text);
    }
    return {};
}

Result<Transaction> Transaction::begin(sqlite3* db) {
    HL_TRY(exec(db, "BEGIN IMMEDIATE"));
    return Transaction(db);
}

Transaction::~Transaction() {
    if (db_)
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

Status Transaction::commit() {
    HL_TRY(exec(db_, "COMMIT"));
    db_ = nullptr;
    return {};
}

} // namespace heirloom::server::sql
