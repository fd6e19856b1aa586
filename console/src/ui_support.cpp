#include "ui_support.hpp"

#include <QDateTime>
#include <QFormLayout>
#include <QHeaderView>
#include <QLocale>
#include <QMessageBox>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>

namespace heirloom::console {

QString format_time(std::int64_t unix_seconds, const QString& none) {
    if (unix_seconds <= 0)
        return none;
    return QDateTime::fromSecsSinceEpoch(unix_seconds).toString(QStringLiteral("yyyy-MM-dd HH:mm"));
}

QString format_size(std::uint64_t bytes) {
    return QLocale::system().formattedDataSize(static_cast<qint64>(bytes), 1,
                                               QLocale::DataSizeTraditionalFormat);
}

void show_error(QLabel* status, const Error& error) {
    status->setStyleSheet(QStringLiteral("color: #b00020;"));
    status->setText(qs(error.message));
}

void show_news(QLabel* status, const QString& text) {
    status->setStyleSheet(QString());
    status->setText(text);
}

QLabel* status_line(QWidget* parent) {
    auto* status = new QLabel(parent);
    status->setObjectName(QStringLiteral("status"));
    status->setWordWrap(true);
    return status;
}

QLabel* split_page(QWidget* page, QWidget* list_side, QWidget* detail_side) {
    auto* splitter = new QSplitter(page);
    splitter->addWidget(list_side);
    splitter->addWidget(detail_side);
    splitter->setStretchFactor(1, 1);
    splitter->setChildrenCollapsible(false);
    QLabel* status = status_line(page);
    auto* layout = new QVBoxLayout(page);
    layout->addWidget(splitter, 1);
    layout->addWidget(status);
    return status;
}

void set_up_pick_table(QTableWidget* table) {
    table->horizontalHeader()->setStretchLastSection(true);
    table->setSelectionBehavior(QAbstractItemView::SelectRows);
    table->setSelectionMode(QAbstractItemView::SingleSelection);
    table->setEditTriggers(QAbstractItemView::NoEditTriggers);
    table->verticalHeader()->hide();
}

QString counted(long long n, const QString& one, const QString& many) {
    return QStringLiteral("%1 %2").arg(n).arg(n == 1 ? one : many);
}

void add_row(QFormLayout* form, const QString& label, QLayout* row, QWidget* buddy) {
    auto* text = new QLabel(label, form->parentWidget());
    text->setBuddy(buddy);
    form->addRow(text, row);
}

bool confirm(QWidget* parent, const QString& title, const QString& question) {
    QMessageBox box(QMessageBox::Warning, title, question, QMessageBox::Yes | QMessageBox::Cancel,
                    parent);
    box.setDefaultButton(QMessageBox::Cancel);
    box.setObjectName(QStringLiteral("confirm"));
    return box.exec() == QMessageBox::Yes;
}

} // namespace heirloom::console
