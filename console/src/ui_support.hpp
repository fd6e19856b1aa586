#pragma once

// Small pieces every console screen uses: server calls on a worker thread with the answer
// delivered back on the UI thread, conversions between std::string and QString, and how
// times, sizes and errors are shown.

#include "heirloom/common/error.hpp"

#include <QFutureWatcher>
#include <QLabel>
#include <QString>
#include <QtConcurrent/QtConcurrentRun>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

class QFormLayout;
class QLayout;
class QTableWidget;
class QWidget;

namespace heirloom::console {

// Runs work (a blocking server call) on Qt's thread pool and calls done(result) on owner's
// thread when it finishes. If owner is destroyed first, the result is dropped: the watcher is
// owner's child and goes with it.
template <class Work, class Done> void run_in_background(QObject* owner, Work work, Done done) {
    using T = std::invoke_result_t<Work>;
    auto* watcher = new QFutureWatcher<T>(owner);
    QObject::connect(watcher, &QFutureWatcherBase::finished, owner,
                     [watcher, done = std::move(done)]() mutable {
                         done(watcher->result());
                         watcher->deleteLater();
                     });
    watcher->setFuture(QtConcurrent::run(std::move(work)));
}

inline QString qs(const std::string& text) {
    return QString::fromStdString(text);
}
inline std::string ss(const QString& text) {
    return text.toStdString();
}

// "2026-12-01 22:40" in local time, or `none` for 0.
QString format_time(std::int64_t unix_seconds, const QString& none = QStringLiteral("never"));
// "1.5 GiB".
QString format_size(std::uint64_t bytes);

// Shows a result on a status line: red for an error, plain for news.
void show_error(QLabel* status, const Error& error);
void show_news(QLabel* status, const QString& text);

// The status line under a screen, where show_error and show_news write: objectName "status",
// word-wrapped.
QLabel* status_line(QWidget* parent);

// Lays out a screen with a list side and a detail side in a splitter (the detail side takes
// the extra width, neither side collapses) over its status line, which it returns.
QLabel* split_page(QWidget* page, QWidget* list_side, QWidget* detail_side);

// A read-only table whose rows are picked one at a time: whole-row single selection, no
// editing, no row numbers, the last column stretched.
void set_up_pick_table(QTableWidget* table);

// "1 endpoint", "3 endpoints".
QString counted(long long n, const QString& one, const QString& many);

// A form row whose field is a layout (a line edit and a button): the label gets the field's
// mnemonic, which QFormLayout only arranges for a single widget.
void add_row(QFormLayout* form, const QString& label, QLayout* row, QWidget* buddy);

// Asks before a destructive action; true when the admin confirmed. The default button is
// Cancel, so a stray Enter destroys nothing.
bool confirm(QWidget* parent, const QString& title, const QString& question);

} // namespace heirloom::console
