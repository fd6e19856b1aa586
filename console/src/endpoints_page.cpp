#include "endpoints_page.hpp"

#include "ui_support.hpp"

#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <QTableWidget>
#include <QVBoxLayout>

namespace heirloom::console {

EndpointsPage::EndpointsPage(Connection connection, QWidget* parent)
    : QWidget(parent), connection_(std::move(connection)) {
    table_ = new QTableWidget(0, 7, this);
    table_->setObjectName(QStringLiteral("endpoints"));
    table_->setHorizontalHeaderLabels({tr("Host"), tr("User"), tr("Last contact"),
                                       tr("Image versions"), tr("State"), tr("Last error"),
                                       tr("Enrolled")});
    set_up_pick_table(table_);
    table_->setSortingEnabled(false);
    table_->setWordWrap(false);
    auto* refresh_button = new QPushButton(tr("&Refresh"), this);
    refresh_button->setObjectName(QStringLiteral("refresh_endpoints"));
    revoke_ = new QPushButton(tr("Re&voke endpoint…"), this);
    revoke_->setObjectName(QStringLiteral("revoke_endpoint"));
    revoke_->setEnabled(false);
    auto* buttons = new QHBoxLayout;
    buttons->addWidget(refresh_button);
    buttons->addStretch(1);
    buttons->addWidget(revoke_);
    status_ = status_line(this);
    auto* layout = new QVBoxLayout(this);
    layout->addWidget(table_, 1);
    layout->addLayout(buttons);
    layout->addWidget(status_);
    connect(refresh_button, &QPushButton::clicked, this, &EndpointsPage::refresh);
    connect(revoke_, &QPushButton::clicked, this, &EndpointsPage::revoke);
    connect(table_, &QTableWidget::itemSelectionChanged, this, [this] {
        int row = table_->currentRow();
        revoke_->setEnabled(row >= 0 && row < static_cast<int>(endpoints_.size()) &&
                            !endpoints_[static_cast<std::size_t>(row)].revoked);
    });
}

void EndpointsPage::refresh() {
    show_news(status_, tr("Loading endpoints…"));
    run_in_background(
        this, [c = connection_] { return fetch_endpoints(c); },
        [this](Result<std::vector<Endpoint>> result) {
            if (!result)
                return show_error(status_, result.error());
            endpoints_ = std::move(*result);
            table_->setRowCount(0);
            for (const auto& e : endpoints_) {
                QStringList versions, states;
                for (const auto& i : e.images) {
                    versions << QStringLiteral("%1 v%2").arg(qs(i.image)).arg(i.version);
                    states << qs(i.state);
                }
                QString state = e.revoked ? tr("revoked") : states.join(QStringLiteral(", "));
                if (state.isEmpty())
                    state = tr("enrolled, no image yet");
                QString error = e.last_error.empty() ? QString()
                                                     : format_time(e.last_error_time, QString()) +
                                                           QStringLiteral(": ") + qs(e.last_error);
                QStringList cells = {qs(e.hostname),
                                     qs(e.user),
                                     format_time(e.last_contact),
                                     versions.isEmpty() ? tr("none") : versions.join(", "),
                                     state,
                                     error,
                                     format_time(e.enrolled)};
                int row = table_->rowCount();
                table_->insertRow(row);
                for (int col = 0; col < cells.size(); ++col) {
                    auto* item = new QTableWidgetItem(cells[col]);
                    item->setToolTip(cells[col]);
                    table_->setItem(row, col, item);
                }
            }
            table_->resizeColumnsToContents();
            show_news(status_, counted(static_cast<long long>(endpoints_.size()), tr("endpoint."),
                                       tr("endpoints.")));
            Q_EMIT endpoints_loaded();
        });
}

void EndpointsPage::revoke() {
    int row = table_->currentRow();
    if (row < 0 || row >= static_cast<int>(endpoints_.size()))
        return;
    // A copy: the list may be reloaded while the confirmation is open.
    Endpoint e = endpoints_[static_cast<std::size_t>(row)];
    if (!confirm(this, tr("Revoke endpoint"),
                 tr("Revoke %1 (%2)? Its token stops working at once; it must enrol again to "
                    "receive policies and images.")
                     .arg(qs(e.hostname), qs(e.user))))
        return;
    run_in_background(
        this, [c = connection_, id = e.id] { return revoke_endpoint(c, id); },
        [this, host = qs(e.hostname)](Status r) {
            if (!r)
                return show_error(status_, r.error());
            refresh();
            show_news(status_, tr("%1 revoked.").arg(host));
        });
}

} // namespace heirloom::console
