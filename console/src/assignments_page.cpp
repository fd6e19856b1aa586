#include "assignments_page.hpp"

#include "heirloom/policy/json.hpp"
#include "ui_support.hpp"

#include <QCheckBox>
#include <QComboBox>
#include <QDateTimeEdit>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPushButton>
#include <QRegularExpression>
#include <QSignalBlocker>
#include <QSpinBox>
#include <QTableWidget>
#include <QVBoxLayout>

namespace heirloom::console {
namespace {

constexpr std::int64_t hour = 3600;

// The enum values in the order their combo boxes list them; the index is the value.
QStringList flow_names() {
    return {QStringLiteral("off"), QStringLiteral("host to guest"), QStringLiteral("guest to host"),
            QStringLiteral("both ways")};
}

QComboBox* combo(const QStringList& items, const char* name, QWidget* parent) {
    auto* c = new QComboBox(parent);
    c->addItems(items);
    c->setObjectName(QString::fromLatin1(name));
    return c;
}

QString principal_text(const policy::Principal& p) {
    return (p.kind == policy::PrincipalKind::group ? QStringLiteral("group ")
                                                   : QStringLiteral("user ")) +
           qs(p.name);
}

} // namespace

AssignmentsPage::AssignmentsPage(Connection connection, QWidget* parent)
    : QWidget(parent), connection_(std::move(connection)) {
    search_text_ = new QLineEdit(this);
    search_text_->setObjectName(QStringLiteral("directory_search"));
    search_text_->setPlaceholderText(tr("part of a name"));
    search_kind_ = combo({tr("Groups"), tr("Users")}, "directory_kind", this);
    auto* search_button = new QPushButton(tr("&Search"), this);
    search_button->setObjectName(QStringLiteral("search"));
    found_ = new QListWidget(this);
    found_->setObjectName(QStringLiteral("directory_results"));
    auto* use = new QPushButton(tr("Assign to the &chosen one"), this);
    use->setObjectName(QStringLiteral("use_principal"));
    auto* dir_box = new QGroupBox(tr("Directory"), this);
    auto* dir_layout = new QVBoxLayout(dir_box);
    auto* search_row = new QHBoxLayout;
    search_row->addWidget(search_kind_);
    search_row->addWidget(search_text_, 1);
    dir_layout->addLayout(search_row);
    dir_layout->addWidget(search_button);
    dir_layout->addWidget(found_, 1);
    dir_layout->addWidget(use);
    dir_box->setMinimumWidth(220);

    assignments_ = new QTableWidget(0, 6, this);
    assignments_->setObjectName(QStringLiteral("assignments"));
    assignments_->setHorizontalHeaderLabels(
        {tr("Id"), tr("Workspace"), tr("Given to"), tr("Clipboard"), tr("Expires"), tr("Offline")});
    set_up_pick_table(assignments_);
    auto* new_button = new QPushButton(tr("&New assignment"), this);
    new_button->setObjectName(QStringLiteral("new_assignment"));
    delete_ = new QPushButton(tr("&Delete assignment…"), this);
    delete_->setObjectName(QStringLiteral("delete_assignment"));

    id_ = new QLineEdit(this);
    id_->setObjectName(QStringLiteral("assignment_id"));
    workspace_ = combo({}, "assignment_workspace", this);
    principal_kind_ = combo({tr("group"), tr("user")}, "principal_kind", this);
    principal_name_ = new QLineEdit(this);
    principal_name_->setObjectName(QStringLiteral("principal_name"));
    auto* principal_row = new QHBoxLayout;
    principal_row->addWidget(principal_kind_);
    principal_row->addWidget(principal_name_, 1);
    clipboard_ = combo(flow_names(), "clipboard", this);
    file_transfer_ = combo(flow_names(), "file_transfer", this);
    printing_ = combo({tr("off"), tr("on")}, "printing", this);
    removable_media_ =
        combo({tr("off"), tr("read-only"), tr("read-write")}, "removable_media", this);
    expires_ = new QCheckBox(tr("on"), this);
    expires_->setObjectName(QStringLiteral("expires"));
    expires_at_ = new QDateTimeEdit(QDateTime::currentDateTime().addDays(30), this);
    expires_at_->setObjectName(QStringLiteral("expires_at"));
    expires_at_->setCalendarPopup(true);
    expires_at_->setDisplayFormat(QStringLiteral("yyyy-MM-dd HH:mm"));
    auto* expiry_row = new QHBoxLayout;
    expiry_row->addWidget(expires_);
    expiry_row->addWidget(expires_at_, 1);
    offline_hours_ = new QSpinBox(this);
    offline_hours_->setObjectName(QStringLiteral("offline_hours"));
    offline_hours_->setRange(0, static_cast<int>(policy::limits::max_offline_limit / hour));
    offline_hours_->setSuffix(tr(" hours"));
    on_expiry_ = combo({tr("stop the workspace"), tr("stop and wipe its data")}, "on_expiry", this);
    overriding_ =
        new QCheckBox(tr("overrides the user's other assignments of this workspace"), this);
    overriding_->setObjectName(QStringLiteral("overriding"));
    auto* form = new QFormLayout;
    form->addRow(tr("&Id:"), id_);
    form->addRow(tr("&Workspace:"), workspace_);
    add_row(form, tr("&Given to:"), principal_row, principal_name_);
    form->addRow(tr("C&lipboard:"), clipboard_);
    form->addRow(tr("&File transfer:"), file_transfer_);
    form->addRow(tr("&Printing:"), printing_);
    form->addRow(tr("Re&movable media:"), removable_media_);
    add_row(form, tr("Expir&y date:"), expiry_row, expires_);
    form->addRow(tr("O&ffline limit:"), offline_hours_);
    form->addRow(tr("On e&xpiry:"), on_expiry_);
    form->addRow(QString(), overriding_);
    save_ = new QPushButton(tr("&Save assignment"), this);
    save_->setObjectName(QStringLiteral("save_assignment"));
    save_->setShortcut(QKeySequence::Save);
    revert_ = new QPushButton(tr("&Revert"), this);
    revert_->setObjectName(QStringLiteral("revert_assignment"));
    auto* buttons = new QHBoxLayout;
    buttons->addWidget(new_button);
    buttons->addWidget(delete_);
    buttons->addStretch(1);
    buttons->addWidget(revert_);
    buttons->addWidget(save_);
    auto* form_box = new QGroupBox(tr("Assignment"), this);
    auto* form_layout = new QVBoxLayout(form_box);
    form_layout->addLayout(form);
    form_layout->addLayout(buttons);

    auto* middle = new QWidget(this);
    auto* middle_layout = new QVBoxLayout(middle);
    middle_layout->setContentsMargins(0, 0, 0, 0);
    middle_layout->addWidget(assignments_, 1);
    middle_layout->addWidget(form_box);
    status_ = split_page(this, dir_box, middle);

    connect(search_button, &QPushButton::clicked, this, &AssignmentsPage::search);
    connect(search_text_, &QLineEdit::returnPressed, this, &AssignmentsPage::search);
    connect(use, &QPushButton::clicked, this, &AssignmentsPage::use_directory_entry);
    connect(found_, &QListWidget::itemActivated, this, &AssignmentsPage::use_directory_entry);
    connect(assignments_, &QTableWidget::currentCellChanged, this,
            [this](int row, int, int, int) { select_assignment(row); });
    connect(new_button, &QPushButton::clicked, this, [this] {
        if (may_discard())
            new_assignment();
    });
    connect(save_, &QPushButton::clicked, this, &AssignmentsPage::save);
    connect(revert_, &QPushButton::clicked, this,
            [this] { load_form(loaded_, !id_->isEnabled()); });
    connect(delete_, &QPushButton::clicked, this, &AssignmentsPage::remove);
    for (auto* edit : {id_, principal_name_})
        connect(edit, &QLineEdit::textChanged, this, &AssignmentsPage::update_buttons);
    for (auto* c : {workspace_, principal_kind_, clipboard_, file_transfer_, printing_,
                    removable_media_, on_expiry_})
        connect(c, &QComboBox::currentIndexChanged, this, &AssignmentsPage::update_buttons);
    for (auto* c : {expires_, overriding_})
        connect(c, &QCheckBox::toggled, this, &AssignmentsPage::update_buttons);
    connect(expires_at_, &QDateTimeEdit::dateTimeChanged, this, &AssignmentsPage::update_buttons);
    connect(offline_hours_, &QSpinBox::valueChanged, this, &AssignmentsPage::update_buttons);
    new_assignment();
}

void AssignmentsPage::refresh() {
    run_in_background(
        this, [c = connection_] { return fetch_policy(c); },
        [this](Result<PolicyRevision> result) {
            if (!result)
                return show_error(status_, result.error());
            show_policy(std::move(*result));
        });
}

void AssignmentsPage::search() {
    auto kind =
        search_kind_->currentIndex() == 1 ? PrincipalSearch::users : PrincipalSearch::groups;
    std::string text = ss(search_text_->text().trimmed());
    show_news(status_, tr("Searching the directory…"));
    run_in_background(
        this, [c = connection_, kind, text] { return search_directory(c, kind, text); },
        [this, kind](Result<std::vector<DirectoryEntry>> result) {
            if (!result)
                return show_error(status_, result.error());
            found_->clear();
            for (const auto& e : *result) {
                QString label = qs(e.name);
                if (!e.display_name.empty() && e.display_name != e.name)
                    label += QStringLiteral(" — ") + qs(e.display_name);
                auto* item = new QListWidgetItem(label, found_);
                item->setData(Qt::UserRole, qs(e.name));
                item->setData(Qt::UserRole + 1, kind == PrincipalSearch::users ? 1 : 0);
                item->setToolTip(qs(e.dn));
            }
            if (found_->count() > 0)
                found_->setCurrentRow(0);
            show_news(status_, tr("%1 in the directory.")
                                   .arg(counted(found_->count(), tr("match"), tr("matches"))));
        });
}

void AssignmentsPage::use_directory_entry() {
    auto* item = found_->currentItem();
    if (!item)
        return;
    principal_kind_->setCurrentIndex(item->data(Qt::UserRole + 1).toInt());
    principal_name_->setText(item->data(Qt::UserRole).toString());
    if (id_->isEnabled() && id_->text().isEmpty() && !workspace_->currentText().isEmpty())
        id_->setText(workspace_->currentText() + QLatin1Char('-') +
                     item->data(Qt::UserRole)
                         .toString()
                         .toLower()
                         .remove(QRegularExpression(QStringLiteral("[^a-z0-9._-]"))));
}

void AssignmentsPage::show_policy(PolicyRevision policy) {
    policy_ = std::move(policy);
    loading_ = true;
    QString keep = workspace_->currentText();
    workspace_->clear();
    for (const auto& w : policy_.set.workspaces)
        workspace_->addItem(qs(w.id));
    workspace_->setCurrentIndex(workspace_->findText(keep)); // the form stays as it was
    assignments_->setRowCount(0);
    int select = -1;
    for (const auto& a : policy_.set.assignments) {
        int row = assignments_->rowCount();
        assignments_->insertRow(row);
        QStringList cells = {qs(a.id),
                             qs(a.workspace_id),
                             principal_text(a.principal),
                             qs(std::string(policy::to_string(a.controls.clipboard))),
                             format_time(a.expires_at),
                             tr("%1 h").arg(a.offline_limit / hour)};
        for (int col = 0; col < cells.size(); ++col)
            assignments_->setItem(row, col, new QTableWidgetItem(cells[col]));
        if (a.id == loaded_.id)
            select = row;
    }
    assignments_->resizeColumnsToContents();
    loading_ = false;
    show_news(status_, tr("Policy revision %1: %2.")
                           .arg(policy_.revision)
                           .arg(counted(static_cast<long long>(policy_.set.assignments.size()),
                                        tr("assignment"), tr("assignments"))));
    if (select >= 0)
        assignments_->selectRow(select);
    else if (!id_->isEnabled())
        new_assignment();
    update_buttons();
}

void AssignmentsPage::select_assignment(int row) {
    if (loading_ || row < 0 || row >= static_cast<int>(policy_.set.assignments.size()))
        return;
    const auto& chosen = policy_.set.assignments[static_cast<std::size_t>(row)];
    // A reload that shows the same assignment keeps the admin's unsaved edit.
    if (chosen.id == loaded_.id && !id_->isEnabled() && dirty()) {
        shown_row_ = row;
        return;
    }
    if (!may_discard()) {
        QSignalBlocker quiet(assignments_);
        assignments_->selectRow(shown_row_);
        return;
    }
    shown_row_ = row;
    load_form(chosen, true);
}

void AssignmentsPage::load_form(const policy::Assignment& a, bool existing) {
    loaded_ = a;
    id_->setText(qs(a.id));
    id_->setEnabled(!existing);
    workspace_->setCurrentIndex(workspace_->findText(qs(a.workspace_id)));
    principal_kind_->setCurrentIndex(a.principal.kind == policy::PrincipalKind::user ? 1 : 0);
    principal_name_->setText(qs(a.principal.name));
    clipboard_->setCurrentIndex(static_cast<int>(a.controls.clipboard));
    file_transfer_->setCurrentIndex(static_cast<int>(a.controls.file_transfer));
    printing_->setCurrentIndex(static_cast<int>(a.controls.printing));
    removable_media_->setCurrentIndex(static_cast<int>(a.controls.removable_media));
    expires_->setChecked(a.expires_at != 0);
    if (a.expires_at != 0)
        expires_at_->setDateTime(QDateTime::fromSecsSinceEpoch(a.expires_at));
    offline_hours_->setValue(static_cast<int>(a.offline_limit / hour));
    on_expiry_->setCurrentIndex(static_cast<int>(a.on_expiry));
    overriding_->setChecked(a.overriding == policy::Overriding::yes);
    update_buttons();
}

policy::Assignment AssignmentsPage::from_form() const {
    policy::Assignment a = loaded_;
    a.id = ss(id_->text().trimmed());
    a.workspace_id = ss(workspace_->currentText());
    a.principal = {principal_kind_->currentIndex() == 1 ? policy::PrincipalKind::user
                                                        : policy::PrincipalKind::group,
                   ss(principal_name_->text().trimmed())};
    a.controls.clipboard = static_cast<policy::DataFlow>(clipboard_->currentIndex());
    a.controls.file_transfer = static_cast<policy::DataFlow>(file_transfer_->currentIndex());
    a.controls.printing = static_cast<policy::Printing>(printing_->currentIndex());
    a.controls.removable_media =
        static_cast<policy::RemovableMedia>(removable_media_->currentIndex());
    // Whole hours in the form; a limit set elsewhere in seconds survives an unrelated edit.
    if (offline_hours_->value() != loaded_.offline_limit / hour)
        a.offline_limit = offline_hours_->value() * hour;
    std::int64_t expires = expires_->isChecked() ? expires_at_->dateTime().toSecsSinceEpoch() : 0;
    if (!expires_->isChecked() || loaded_.expires_at / 60 != expires / 60)
        a.expires_at = expires;
    a.on_expiry = static_cast<policy::OnExpiry>(on_expiry_->currentIndex());
    a.overriding = overriding_->isChecked() ? policy::Overriding::yes : policy::Overriding::no;
    return a;
}

bool AssignmentsPage::dirty() const {
    return from_form() != loaded_;
}

void AssignmentsPage::update_buttons() {
    bool existing = !id_->isEnabled();
    revert_->setEnabled(dirty());
    save_->setEnabled(dirty() || !existing);
    delete_->setEnabled(existing);
    expires_at_->setEnabled(expires_->isChecked());
}

bool AssignmentsPage::may_discard() {
    return !dirty() ||
           confirm(this, tr("Unsaved changes"),
                   tr("Drop the unsaved changes to %1?")
                       .arg(loaded_.id.empty() ? tr("the new assignment") : qs(loaded_.id)));
}

void AssignmentsPage::new_assignment() {
    shown_row_ = -1;
    assignments_->blockSignals(true);
    assignments_->clearSelection();
    assignments_->setCurrentCell(-1, -1);
    assignments_->blockSignals(false);
    policy::Assignment a;
    a.workspace_id = ss(workspace_->currentText());
    load_form(a, false);
}

void AssignmentsPage::save() {
    policy::Assignment a = from_form();
    if (auto valid = policy::validate_assignment(a, "assignment"); !valid)
        return show_error(status_, valid.error());
    run_in_background(
        this, [c = connection_, a] { return save_assignment(c, a); },
        [this, a](Status r) {
            if (!r)
                return show_error(status_, r.error());
            loaded_ = a;
            id_->setEnabled(false);
            show_news(status_, tr("Assignment %1 saved.").arg(qs(a.id)));
            Q_EMIT policy_saved();
            refresh();
        });
}

void AssignmentsPage::remove() {
    std::string id = loaded_.id;
    if (!confirm(this, tr("Delete assignment"),
                 tr("Delete assignment %1? Its users lose the workspace at their next policy "
                    "update unless another assignment gives it to them.")
                     .arg(qs(id))))
        return;
    run_in_background(
        this, [c = connection_, id] { return delete_item(c, Collection::assignments, id); },
        [this, id](Status r) {
            if (!r)
                return show_error(status_, r.error());
            show_news(status_, tr("Assignment %1 deleted.").arg(qs(id)));
            new_assignment();
            Q_EMIT policy_saved();
            refresh();
        });
}

} // namespace heirloom::console
