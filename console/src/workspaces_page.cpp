#include "workspaces_page.hpp"

#include "guest_apps_combo.hpp"
#include "ui_support.hpp"

#include <QCheckBox>
#include <QComboBox>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSignalBlocker>
#include <QSpinBox>
#include <QTableWidget>
#include <QVBoxLayout>

namespace heirloom::console {
namespace {

// "a, b ,c" as {"a", "b", "c"}, for the comma-separated list fields.
std::vector<std::string> split_list(const QString& text) {
    std::vector<std::string> out;
    for (const QString& part : text.split(QLatin1Char(','), Qt::SkipEmptyParts))
        if (!part.trimmed().isEmpty())
            out.push_back(ss(part.trimmed()));
    return out;
}

QString join_list(const std::vector<std::string>& items, const QString& separator) {
    QStringList parts;
    for (const auto& item : items)
        parts << qs(item);
    return parts.join(separator);
}

QPushButton* button(const QString& text, const char* name, QWidget* parent) {
    auto* b = new QPushButton(text, parent);
    b->setObjectName(QString::fromLatin1(name));
    return b;
}

} // namespace

WorkspacesPage::WorkspacesPage(Connection connection, QWidget* parent)
    : QWidget(parent), connection_(std::move(connection)) {
    workspaces_ = new QListWidget(this);
    workspaces_->setObjectName(QStringLiteral("workspaces"));
    workspaces_->setMinimumWidth(200);
    auto* ws_new = button(tr("&New workspace"), "new_workspace", this);
    ws_delete_ = button(tr("&Delete workspace…"), "delete_workspace", this);
    auto* list_box = new QWidget(this);
    auto* list_layout = new QVBoxLayout(list_box);
    list_layout->setContentsMargins(0, 0, 0, 0);
    list_layout->addWidget(new QLabel(tr("Workspaces"), this));
    list_layout->addWidget(workspaces_, 1);
    list_layout->addWidget(ws_new);
    list_layout->addWidget(ws_delete_);

    ws_id_ = new QLineEdit(this);
    ws_id_->setObjectName(QStringLiteral("workspace_id"));
    ws_id_->setPlaceholderText(tr("payroll-ws (letters, digits, . _ -)"));
    ws_name_ = new QLineEdit(this);
    ws_name_->setObjectName(QStringLiteral("workspace_name"));
    ws_image_ = new QComboBox(this);
    ws_image_->setObjectName(QStringLiteral("workspace_image"));
    ws_persistence_ = new QComboBox(this);
    ws_persistence_->addItem(tr("persistent: the user's changes are kept"));
    ws_persistence_->addItem(tr("revertible: changes are discarded on revert"));
    ws_memory_ = new QSpinBox(this);
    ws_memory_->setRange(static_cast<int>(policy::limits::min_memory_mib), 1 << 20);
    ws_memory_->setSuffix(QStringLiteral(" MiB"));
    ws_memory_->setSingleStep(256);
    ws_colour_ = new QLineEdit(this);
    ws_colour_->setPlaceholderText(tr("#rrggbb, or empty for no frame"));
    ws_network_ = new QComboBox(this);
    ws_network_->addItems({tr("NAT (the guest reaches what the host reaches)"), tr("off"),
                           tr("only the listed hosts")});
    ws_hosts_ = new QLineEdit(this);
    ws_hosts_->setPlaceholderText(tr("payroll.example.com, *.example.org"));
    auto* ws_form = new QFormLayout;
    ws_form->addRow(tr("&Id:"), ws_id_);
    ws_form->addRow(tr("Display &name:"), ws_name_);
    ws_form->addRow(tr("&Image:"), ws_image_);
    ws_form->addRow(tr("&Changes:"), ws_persistence_);
    ws_form->addRow(tr("&Memory:"), ws_memory_);
    ws_form->addRow(tr("&Frame colour:"), ws_colour_);
    ws_form->addRow(tr("Ne&twork:"), ws_network_);
    ws_form->addRow(tr("&Allowed hosts:"), ws_hosts_);
    ws_save_ = button(tr("&Save workspace"), "save_workspace", this);
    ws_save_->setShortcut(QKeySequence::Save);
    ws_revert_ = button(tr("&Revert"), "revert_workspace", this);
    auto* ws_buttons = new QHBoxLayout;
    ws_buttons->addStretch(1);
    ws_buttons->addWidget(ws_revert_);
    ws_buttons->addWidget(ws_save_);
    auto* ws_box = new QGroupBox(tr("Workspace"), this);
    auto* ws_layout = new QVBoxLayout(ws_box);
    ws_layout->addLayout(ws_form);
    ws_layout->addLayout(ws_buttons);

    apps_ = new QTableWidget(0, 3, this);
    apps_->setObjectName(QStringLiteral("apps"));
    apps_->setHorizontalHeaderLabels({tr("Application"), tr("Id"), tr("Command in the guest")});
    set_up_pick_table(apps_);
    apps_->setIconSize(QSize(24, 24));
    guest_apps_ = new GuestAppsCombo(connection_, this);
    app_id_ = new QLineEdit(this);
    app_id_->setObjectName(QStringLiteral("app_id"));
    app_name_ = new QLineEdit(this);
    app_name_->setObjectName(QStringLiteral("app_name"));
    app_command_ = new QPlainTextEdit(this);
    app_command_->setObjectName(QStringLiteral("app_command"));
    app_command_->setPlaceholderText(
        tr("one argument per line, e.g.\nC:\\Apps\\Payroll\\PAY.EXE\n/s"));
    app_command_->setTabChangesFocus(true);
    app_command_->setFixedHeight(app_command_->fontMetrics().height() * 4);
    app_icon_ = new QLineEdit(this);
    app_icon_->setObjectName(QStringLiteral("app_icon"));
    app_icon_->setPlaceholderText(tr("icon id (default: the app's id)"));
    app_types_ = new QLineEdit(this);
    app_types_->setObjectName(QStringLiteral("app_types"));
    app_types_->setPlaceholderText(tr("MIME types it opens: application/x-pay, …"));
    app_urls_ = new QLineEdit(this);
    app_urls_->setPlaceholderText(tr("URLs opened in the guest: https://pay.example/*, …"));
    app_desktop_ = new QCheckBox(tr("also a launcher on the user's desktop"), this);
    app_desktop_->setObjectName(QStringLiteral("app_desktop"));
    auto* app_form = new QFormLayout;
    app_form->addRow(tr("From the &guest:"), guest_apps_);
    app_form->addRow(tr("I&d:"), app_id_);
    app_form->addRow(tr("Na&me:"), app_name_);
    app_form->addRow(tr("C&ommand:"), app_command_);
    app_form->addRow(tr("Ic&on:"), app_icon_);
    app_form->addRow(tr("File t&ypes:"), app_types_);
    app_form->addRow(tr("&URLs:"), app_urls_);
    app_form->addRow(QString(), app_desktop_);
    app_new_ = button(tr("N&ew app"), "new_app", this);
    app_delete_ = button(tr("De&lete app…"), "delete_app", this);
    app_revert_ = button(tr("Re&vert"), "revert_app", this);
    app_save_ = button(tr("Save a&pp"), "save_app", this);
    auto* app_buttons = new QHBoxLayout;
    app_buttons->addWidget(app_new_);
    app_buttons->addWidget(app_delete_);
    app_buttons->addStretch(1);
    app_buttons->addWidget(app_revert_);
    app_buttons->addWidget(app_save_);
    auto* app_box = new QGroupBox(tr("Published applications of this workspace"), this);
    auto* app_layout = new QHBoxLayout(app_box);
    app_layout->addWidget(apps_, 1);
    auto* app_right = new QVBoxLayout;
    app_right->addLayout(app_form);
    app_right->addLayout(app_buttons);
    app_layout->addLayout(app_right, 1);

    auto* right = new QWidget(this);
    auto* right_layout = new QVBoxLayout(right);
    right_layout->setContentsMargins(0, 0, 0, 0);
    right_layout->addWidget(ws_box);
    right_layout->addWidget(app_box, 1);
    status_ = split_page(this, list_box, right);

    connect(workspaces_, &QListWidget::currentRowChanged, this, &WorkspacesPage::select_workspace);
    connect(apps_, &QTableWidget::currentCellChanged, this,
            [this](int row, int, int, int) { select_app(row); });
    connect(ws_new, &QPushButton::clicked, this, [this] {
        if (may_discard(workspace_dirty(), loaded_workspace_.id))
            new_workspace();
    });
    connect(ws_save_, &QPushButton::clicked, this, &WorkspacesPage::save_workspace);
    connect(ws_revert_, &QPushButton::clicked, this,
            [this] { load_workspace_form(loaded_workspace_, !ws_id_->isEnabled()); });
    connect(ws_delete_, &QPushButton::clicked, this, &WorkspacesPage::delete_workspace);
    connect(app_new_, &QPushButton::clicked, this, [this] {
        if (may_discard(app_dirty(), loaded_app_.id))
            new_app();
    });
    connect(app_save_, &QPushButton::clicked, this, &WorkspacesPage::save_app);
    connect(app_revert_, &QPushButton::clicked, this,
            [this] { load_app_form(loaded_app_, !app_id_->isEnabled()); });
    connect(app_delete_, &QPushButton::clicked, this, &WorkspacesPage::delete_app);
    connect(guest_apps_, &GuestAppsCombo::picked, this, &WorkspacesPage::pick_reported_app);
    connect(guest_apps_, &GuestAppsCombo::loaded, this, [this] {
        show_app_icons();
        update_buttons();
    });
    for (auto* edit : {ws_id_, ws_name_, ws_colour_, ws_hosts_, app_id_, app_name_, app_icon_,
                       app_types_, app_urls_})
        connect(edit, &QLineEdit::textChanged, this, &WorkspacesPage::update_buttons);
    connect(app_command_, &QPlainTextEdit::textChanged, this, &WorkspacesPage::update_buttons);
    connect(app_desktop_, &QCheckBox::toggled, this, &WorkspacesPage::update_buttons);
    for (auto* combo : {ws_image_, ws_persistence_, ws_network_})
        connect(combo, &QComboBox::currentIndexChanged, this, &WorkspacesPage::update_buttons);
    connect(ws_memory_, &QSpinBox::valueChanged, this, &WorkspacesPage::update_buttons);
    new_workspace();
}

void WorkspacesPage::refresh() {
    show_news(status_, tr("Loading the policy…"));
    run_in_background(
        this, [c = connection_] { return fetch_policy(c); },
        [this](Result<PolicyRevision> result) {
            if (!result)
                return show_error(status_, result.error());
            show_policy(std::move(*result));
        });
}

void WorkspacesPage::show_policy(PolicyRevision policy) {
    QString current = workspaces_->currentItem()
                          ? workspaces_->currentItem()->data(Qt::UserRole).toString()
                          : qs(loaded_workspace_.id);
    policy_ = std::move(policy);
    loading_ = true;
    // Refilling the list must not change the form: that would look like an edit.
    QString image = ws_image_->currentText();
    ws_image_->clear();
    for (const auto& i : policy_.set.images)
        ws_image_->addItem(qs(i.name));
    ws_image_->setCurrentIndex(ws_image_->findText(image));
    workspaces_->clear();
    int select = -1;
    for (const auto& w : policy_.set.workspaces) {
        auto* item = new QListWidgetItem(qs(w.display_name + " (" + w.id + ")"), workspaces_);
        item->setData(Qt::UserRole, qs(w.id));
        if (qs(w.id) == current)
            select = workspaces_->count() - 1;
    }
    loading_ = false;
    show_news(status_, tr("Policy revision %1: %2, %3.")
                           .arg(policy_.revision)
                           .arg(counted(static_cast<long long>(policy_.set.workspaces.size()),
                                        tr("workspace"), tr("workspaces")),
                                counted(static_cast<long long>(policy_.set.apps.size()),
                                        tr("published app"), tr("published apps"))));
    if (select >= 0)
        workspaces_->setCurrentRow(select);
    else if (!ws_id_->isEnabled()) // the one shown is gone; a new one being typed stays
        new_workspace();
}

void WorkspacesPage::select_workspace(int row) {
    if (loading_ || row < 0 || row >= static_cast<int>(policy_.set.workspaces.size()))
        return;
    const auto& chosen = policy_.set.workspaces[static_cast<std::size_t>(row)];
    // A reload that shows the same workspace keeps the admin's unsaved edit.
    if (chosen.id == loaded_workspace_.id && !ws_id_->isEnabled() && workspace_dirty()) {
        shown_row_ = row;
        return;
    }
    if (!may_discard(workspace_dirty(), loaded_workspace_.id)) {
        QSignalBlocker quiet(workspaces_);
        workspaces_->setCurrentRow(shown_row_);
        return;
    }
    shown_row_ = row;
    load_workspace_form(chosen, true);
}

void WorkspacesPage::load_workspace_form(const policy::Workspace& w, bool existing) {
    loaded_workspace_ = w;
    ws_id_->setText(qs(w.id));
    ws_id_->setEnabled(!existing); // an id names the item on the server: not renamed in place
    ws_name_->setText(qs(w.display_name));
    ws_image_->setCurrentIndex(ws_image_->findText(qs(w.image)));
    ws_persistence_->setCurrentIndex(w.persistence == policy::Persistence::revertible ? 1 : 0);
    ws_memory_->setValue(static_cast<int>(w.memory_mib));
    ws_colour_->setText(qs(w.frame_colour.value_or("")));
    ws_network_->setCurrentIndex(static_cast<int>(w.network.mode));
    ws_hosts_->setText(join_list(w.network.allowed_hosts, QStringLiteral(", ")));

    apps_->setRowCount(0);
    for (const auto& app : policy_.set.apps) {
        if (app.workspace_id != w.id || !existing)
            continue;
        int row = apps_->rowCount();
        apps_->insertRow(row);
        apps_->setItem(row, 0, new QTableWidgetItem(qs(app.display_name)));
        apps_->setItem(row, 1, new QTableWidgetItem(qs(app.id)));
        apps_->setItem(row, 2, new QTableWidgetItem(join_list(app.command, QStringLiteral(" "))));
    }
    show_app_icons();
    guest_apps_->load(existing ? w.image : std::string());
    apps_->resizeColumnsToContents();
    if (apps_->rowCount() > 0)
        apps_->selectRow(0);
    else
        new_app();
    update_buttons();
}

void WorkspacesPage::select_app(int row) {
    if (row < 0 || row >= apps_->rowCount())
        return;
    std::string id = ss(apps_->item(row, 1)->text());
    if (id == loaded_app_.id && app_dirty())
        return; // a reload of the same app keeps the unsaved edit
    if (!may_discard(app_dirty(), loaded_app_.id))
        return;
    for (const auto& app : policy_.set.apps)
        if (app.id == id)
            return load_app_form(app, true);
}

void WorkspacesPage::load_app_form(const policy::PublishedApp& app, bool existing) {
    loaded_app_ = app;
    app_id_->setText(qs(app.id));
    app_id_->setEnabled(!existing);
    app_name_->setText(qs(app.display_name));
    app_command_->setPlainText(join_list(app.command, QStringLiteral("\n")));
    app_icon_->setText(app.icon == app.id ? QString() : qs(app.icon));
    app_types_->setText(join_list(app.file_types, QStringLiteral(", ")));
    app_urls_->setText(join_list(app.url_patterns, QStringLiteral(", ")));
    app_desktop_->setChecked(app.desktop_shortcut);
    update_buttons();
}

policy::Workspace WorkspacesPage::workspace_from_form() const {
    policy::Workspace w = loaded_workspace_; // keeps what the form does not show (host check)
    w.id = ss(ws_id_->text().trimmed());
    w.display_name = ss(ws_name_->text().trimmed());
    w.image = ss(ws_image_->currentText());
    w.persistence = ws_persistence_->currentIndex() == 1 ? policy::Persistence::revertible
                                                         : policy::Persistence::persistent;
    w.memory_mib = static_cast<std::uint32_t>(ws_memory_->value());
    QString colour = ws_colour_->text().trimmed();
    w.frame_colour = colour.isEmpty() ? std::nullopt : std::optional(ss(colour));
    w.network.mode = static_cast<policy::NetworkMode>(ws_network_->currentIndex());
    w.network.allowed_hosts = w.network.mode == policy::NetworkMode::allow_list
                                  ? split_list(ws_hosts_->text())
                                  : std::vector<std::string>{};
    return w;
}

policy::PublishedApp WorkspacesPage::app_from_form() const {
    policy::PublishedApp app = loaded_app_;
    app.id = ss(app_id_->text().trimmed());
    app.display_name = ss(app_name_->text().trimmed()); // its workspace: set by new_app
    app.command.clear();
    for (const QString& line : app_command_->toPlainText().split(QLatin1Char('\n')))
        if (!line.trimmed().isEmpty())
            app.command.push_back(ss(line.trimmed()));
    // The guest reports icons by id; most apps' icon has the app's own id.
    app.icon = app_icon_->text().trimmed().isEmpty() ? app.id : ss(app_icon_->text().trimmed());
    app.file_types = split_list(app_types_->text());
    app.url_patterns = split_list(app_urls_->text());
    app.desktop_shortcut = app_desktop_->isChecked();
    return app;
}

bool WorkspacesPage::workspace_dirty() const {
    return workspace_from_form() != loaded_workspace_;
}

bool WorkspacesPage::app_dirty() const {
    return app_from_form() != loaded_app_;
}

void WorkspacesPage::update_buttons() {
    bool existing = !ws_id_->isEnabled();
    ws_revert_->setEnabled(workspace_dirty());
    ws_save_->setEnabled(workspace_dirty() || !existing);
    ws_delete_->setEnabled(existing);
    ws_hosts_->setEnabled(ws_network_->currentIndex() ==
                          static_cast<int>(policy::NetworkMode::allow_list));
    bool apps_possible = existing;
    for (auto* w :
         std::initializer_list<QWidget*>{apps_, app_id_, app_name_, app_command_, app_icon_,
                                         app_types_, app_urls_, app_desktop_, app_new_})
        w->setEnabled(apps_possible && (w != app_id_ || loaded_app_.id.empty()));
    guest_apps_->setEnabled(apps_possible && guest_apps_->reported().version.has_value());
    app_revert_->setEnabled(apps_possible && app_dirty());
    app_save_->setEnabled(apps_possible && (app_dirty() || loaded_app_.id.empty()));
    app_delete_->setEnabled(apps_possible && !loaded_app_.id.empty());
}

void WorkspacesPage::pick_reported_app(const ReportedApp& reported) {
    policy::PublishedApp app = suggested_app(reported, loaded_workspace_.id);
    if (app_id_->isEnabled()) // an existing app keeps its id
        app_id_->setText(qs(app.id));
    app_name_->setText(qs(app.display_name));
    app_command_->setPlainText(join_list(app.command, QStringLiteral("\n")));
    app_icon_->setText(qs(app.icon));
    app_types_->setText(join_list(app.file_types, QStringLiteral(", ")));
    show_news(
        status_,
        tr("Filled in from %1 as the guest reports it; check it and save.").arg(qs(reported.name)));
}

void WorkspacesPage::show_app_icons() {
    for (int row = 0; row < apps_->rowCount(); ++row) {
        std::string id = ss(apps_->item(row, 1)->text());
        for (const auto& app : policy_.set.apps)
            if (app.id == id)
                apps_->item(row, 0)->setIcon(guest_apps_->icon(app.icon));
    }
}

bool WorkspacesPage::may_discard(bool dirty, const std::string& what) {
    return !dirty || confirm(this, tr("Unsaved changes"),
                             tr("Drop the unsaved changes to %1?")
                                 .arg(what.empty() ? tr("the new item") : qs(what)));
}

void WorkspacesPage::new_workspace() {
    {
        QSignalBlocker quiet(workspaces_);
        workspaces_->setCurrentRow(-1);
    }
    shown_row_ = -1;
    policy::Workspace w;
    if (ws_image_->count() > 0)
        w.image = ss(ws_image_->itemText(0));
    load_workspace_form(w, false);
    ws_id_->setFocus();
}

void WorkspacesPage::new_app() {
    apps_->blockSignals(true);
    apps_->clearSelection();
    apps_->blockSignals(false);
    policy::PublishedApp app;
    app.workspace_id = loaded_workspace_.id;
    load_app_form(app, false);
}

void WorkspacesPage::after_save(Status result, const QString& done) {
    if (!result)
        return show_error(status_, result.error());
    show_news(status_, done);
    Q_EMIT policy_saved();
    refresh();
}

void WorkspacesPage::save_workspace() {
    policy::Workspace w = workspace_from_form();
    if (auto valid = policy::validate_workspace(w, "workspace"); !valid)
        return show_error(status_, valid.error());
    loaded_workspace_ = w; // show_policy selects it again by id
    ws_id_->setEnabled(false);
    run_in_background(
        this, [c = connection_, w] { return console::save_workspace(c, w); },
        [this, name = qs(w.display_name)](Status r) {
            after_save(r, tr("Workspace %1 saved.").arg(name));
        });
}

void WorkspacesPage::save_app() {
    policy::PublishedApp app = app_from_form();
    if (auto valid = policy::validate_app(app, "app"); !valid)
        return show_error(status_, valid.error());
    run_in_background(
        this, [c = connection_, app] { return console::save_app(c, app); },
        [this, app](Status r) {
            if (r) { // the reloaded list shows it again, as saved
                loaded_app_ = app;
                app_id_->setEnabled(false);
            }
            after_save(r, tr("Application %1 saved.").arg(qs(app.display_name)));
        });
}

void WorkspacesPage::delete_workspace() {
    std::string id = loaded_workspace_.id;
    if (!confirm(this, tr("Delete workspace"),
                 tr("Delete workspace %1? Endpoints stop offering it at their next policy "
                    "update.")
                     .arg(qs(id))))
        return;
    run_in_background(
        this, [c = connection_, id] { return delete_item(c, Collection::workspaces, id); },
        [this, id](Status r) {
            if (r)
                loaded_workspace_ = {};
            after_save(r, tr("Workspace %1 deleted.").arg(qs(id)));
        });
}

void WorkspacesPage::delete_app() {
    std::string id = loaded_app_.id;
    if (!confirm(this, tr("Delete application"),
                 tr("Delete application %1? It leaves the users' menus at their next policy "
                    "update.")
                     .arg(qs(id))))
        return;
    run_in_background(
        this, [c = connection_, id] { return delete_item(c, Collection::apps, id); },
        [this, id](Status r) { after_save(r, tr("Application %1 deleted.").arg(qs(id))); });
}

} // namespace heirloom::console
