#pragma once

// Workspaces and the applications published from them: a list, an edit form for the chosen
// workspace and one for the chosen app. Edits stay local until saved; Revert (Alt+R) puts the
// form back as loaded, and a save is validated with the policy library before it is sent.

#include "admin_api.hpp"
#include "reported_apps.hpp"

#include <QWidget>

class QCheckBox;
class QComboBox;
class QLabel;
class QLineEdit;
class QListWidget;
class QPlainTextEdit;
class QPushButton;
class QSpinBox;
class QTableWidget;

namespace heirloom::console {

class GuestAppsCombo;

class WorkspacesPage : public QWidget {
    Q_OBJECT
  public:
    WorkspacesPage(Connection connection, QWidget* parent = nullptr);

    // Reloads the policy from the server.
    void refresh();
    // True when the workspace form differs from what was loaded.
    bool workspace_dirty() const;
    bool app_dirty() const;

  Q_SIGNALS:
    // The policy changed on the server (other screens list workspaces too).
    void policy_saved();

  private:
    void show_policy(PolicyRevision policy);
    void select_workspace(int row);
    void select_app(int row);
    void load_workspace_form(const policy::Workspace& w, bool existing);
    void load_app_form(const policy::PublishedApp& app, bool existing);
    policy::Workspace workspace_from_form() const;
    policy::PublishedApp app_from_form() const;
    void new_workspace();
    void new_app();
    void save_workspace();
    void save_app();
    void delete_workspace();
    void delete_app();
    void update_buttons();
    // Fills the app form from an app the guest reported.
    void pick_reported_app(const ReportedApp& reported);
    // Shows the icons guests reported beside the published apps.
    void show_app_icons();
    // True when there is no unsaved edit, or the admin agreed to drop it.
    bool may_discard(bool dirty, const std::string& what);
    void after_save(Status result, const QString& done);

    Connection connection_;
    PolicyRevision policy_;
    policy::Workspace loaded_workspace_;
    policy::PublishedApp loaded_app_;
    bool loading_ = false;
    int shown_row_ = -1; // the workspace in the form, to go back to when a switch is refused

    QListWidget* workspaces_;
    QLineEdit* ws_id_;
    QLineEdit* ws_name_;
    QComboBox* ws_image_;
    QComboBox* ws_persistence_;
    QSpinBox* ws_memory_;
    QLineEdit* ws_colour_;
    QComboBox* ws_network_;
    QLineEdit* ws_hosts_;
    QPushButton* ws_save_;
    QPushButton* ws_revert_;
    QPushButton* ws_delete_;

    QTableWidget* apps_;
    GuestAppsCombo* guest_apps_;
    QLineEdit* app_id_;
    QLineEdit* app_name_;
    QPlainTextEdit* app_command_;
    QLineEdit* app_icon_;
    QLineEdit* app_types_;
    QLineEdit* app_urls_;
    QCheckBox* app_desktop_;
    QPushButton* app_new_;
    QPushButton* app_save_;
    QPushButton* app_revert_;
    QPushButton* app_delete_;

    QLabel* status_;
};

} // namespace heirloom::console
