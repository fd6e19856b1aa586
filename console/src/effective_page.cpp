#include "effective_page.hpp"

#include "ui_support.hpp"

#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QTableWidget>
#include <QVBoxLayout>

namespace heirloom::console {
namespace {

QString control_label(const std::string& control) {
    if (control == "file_transfer")
        return QStringLiteral("file transfer");
    if (control == "removable_media")
        return QStringLiteral("removable media");
    if (control == "expires_at")
        return QStringLiteral("expires");
    if (control == "offline_limit")
        return QStringLiteral("offline limit");
    if (control == "on_expiry")
        return QStringLiteral("on expiry");
    return qs(control);
}

} // namespace

EffectivePage::EffectivePage(Connection connection, QWidget* parent)
    : QWidget(parent), connection_(std::move(connection)) {
    user_ = new QLineEdit(this);
    user_->setObjectName(QStringLiteral("effective_user"));
    user_->setPlaceholderText(tr("directory user name, e.g. bob"));
    auto* show = new QPushButton(tr("&Show effective policy"), this);
    show->setObjectName(QStringLiteral("show_effective"));
    auto* row = new QHBoxLayout;
    row->addWidget(new QLabel(tr("&User:"), this));
    static_cast<QLabel*>(row->itemAt(0)->widget())->setBuddy(user_);
    row->addWidget(user_, 1);
    row->addWidget(show);
    groups_ = new QLabel(this);
    groups_->setObjectName(QStringLiteral("effective_groups"));
    groups_->setWordWrap(true);
    controls_ = new QTableWidget(0, 4, this);
    controls_->setObjectName(QStringLiteral("effective_controls"));
    controls_->setHorizontalHeaderLabels(
        {tr("Workspace"), tr("Control"), tr("Value"), tr("Decided by assignment")});
    controls_->horizontalHeader()->setStretchLastSection(true);
    controls_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    controls_->setSelectionBehavior(QAbstractItemView::SelectRows);
    controls_->verticalHeader()->hide();
    status_ = status_line(this);
    auto* explain = new QLabel(
        tr("Where a user gets a workspace from several assignments (their own and their "
           "groups'), the most restrictive value of each control wins, unless an assignment "
           "overrides. The last column names the assignment that decided each value."),
        this);
    explain->setWordWrap(true);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(row);
    layout->addWidget(explain);
    layout->addWidget(groups_);
    layout->addWidget(controls_, 1);
    layout->addWidget(status_);
    connect(show, &QPushButton::clicked, this, [this] { show_user(user_->text().trimmed()); });
    connect(user_, &QLineEdit::returnPressed, this, [this] { show_user(user_->text().trimmed()); });
}

void EffectivePage::show_user(const QString& user) {
    if (user.isEmpty())
        return show_error(status_, {Errc::invalid_argument, "Enter a user name."});
    user_->setText(user);
    show_news(status_, tr("Evaluating the policy of %1…").arg(user));
    run_in_background(
        this, [c = connection_, u = ss(user)] { return fetch_effective(c, u); },
        [this](Result<EffectiveView> result) {
            controls_->setRowCount(0);
            groups_->clear();
            if (!result)
                return show_error(status_, result.error());
            QStringList groups;
            for (const auto& g : result->groups)
                groups << qs(g);
            groups_->setText(tr("%1 is in the groups: %2")
                                 .arg(qs(result->user))
                                 .arg(groups.isEmpty() ? tr("(none)") : groups.join(", ")));
            for (const auto& c : result->controls) {
                int row = controls_->rowCount();
                controls_->insertRow(row);
                QString value = qs(c.value);
                if (c.control == "expires_at" && c.value != "never")
                    value = format_time(value.toLongLong());
                QStringList cells = {qs(c.workspace), control_label(c.control), value,
                                     qs(c.decided_by)};
                for (int col = 0; col < cells.size(); ++col)
                    controls_->setItem(row, col, new QTableWidgetItem(cells[col]));
            }
            controls_->resizeColumnsToContents();
            show_news(status_, result->controls.empty()
                                   ? tr("%1 gets no workspace.").arg(qs(result->user))
                                   : tr("Effective policy of %1.").arg(qs(result->user)));
        });
}

} // namespace heirloom::console
