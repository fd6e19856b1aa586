#pragma once

// A thin RAII layer over the SQLite C API: prepared statements with positional binding and
// errors as values.

#include "heirloom/common/bytes.hpp"
#include "heirloom/common/error.hpp"

#include <cstdint>
#include <sqlite3.h>
#include <string>
#include <string_view>

namespace heirloom::server::sql {

class Statement {
  public:
    static Result<Statement> prepare(sqlite3* db, std::string_view sql);
    ~Statement();
    Statement(Statement&& other) noexcept : stmt_(other.stmt_), db_(other.db_) {
        other.stmt_ = nullptr;
    }
    Statement& operator=(Statement&&) = delete;

    Statement& bind(int index, std::int64_t value);
    Statement& bind(int index, std::string_view value);
    Statement& bind(int index, ByteView value);

    // Steps once: true when a row is available, false when done.
    Result<bool> step();
    // Makes the statement ready to run again with new bindings.
    void reset();
    // Steps until done (for statements that return no rows).
    Status run();

    std::int64_t integer(int column) const;
    std::string text(int column) const;
    Bytes blob(int column) const;

  private:
    Statement(sqlite3_stmt* stmt, sqlite3* db) : stmt_(stmt), db_(db) {}
    sqlite3_stmt* stmt_;
    sqlite3* db_;
};

// Runs SQL with no parameters and no results (schema, pragmas, BEGIN/COMMIT).
Status exec(sqlite3* db, std::string_view sql);

// Begins an immediate transaction and rolls it back unless committed.
class Transaction {
  public:
    static Result<Transaction> begin(sqlite3* db);
    ~Transaction();
    Transaction(Transaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
    Transaction& operator=(Transaction&&) = delete;
    Status commit();

  private:
    explicit Transaction(sqlite3* db) : db_(db) {}
    sqlite3* db_;
};

} // namespace heirloom::server::sql
