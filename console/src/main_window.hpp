#pragma once

// The console's main window after login: one tab per screen (images, workspaces and apps,
// assignments, effective policy, endpoints, report), Alt+1…6 to switch, F5 to reload.

#include "admin_api.hpp"

#include <QMainWindow>

class QTabWidget;

namespace heirloom::console {

class AssignmentsPage;
class EffectivePage;
class EndpointsPage;
class ImagesPage;
class ReportPage;
class WorkspacesPage;

class MainWindow : public QMainWindow {
    Q_OBJECT
  public:
    explicit MainWindow(Connection connection, QWidget* parent = nullptr);

    ImagesPage* images() const { return images_; }
    WorkspacesPage* workspaces() const { return workspaces_; }
    AssignmentsPage* assignments() const { return assignments_; }
    EffectivePage* effective() const { return effective_; }
    EndpointsPage* endpoints() const { return endpoints_; }
    ReportPage* report() const { return report_; }
    QTabWidget* tabs() const { return tabs_; }

    // Reloads the screen on show.
    void refresh_current();
    // True once the admin chose Log out (the program then shows the login window again).
    bool logged_out() const { return logged_out_; }

  protected:
    // Closing the window ends the session on the server, so the token dies with it.
    void closeEvent(QCloseEvent* event) override;

  private:
    Connection connection_;
    QTabWidget* tabs_;
    ImagesPage* images_;
    WorkspacesPage* workspaces_;
    AssignmentsPage* assignments_;
    EffectivePage* effective_;
    EndpointsPage* endpoints_;
    ReportPage* report_;
    bool logged_out_ = false;
    bool session_ended_ = false;
};

} // namespace heirloom::console
