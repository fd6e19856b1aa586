#include "main_window.hpp"

#include "assignments_page.hpp"
#include "effective_page.hpp"
#include "endpoints_page.hpp"
#include "images_page.hpp"
#include "report_page.hpp"
#include "ui_support.hpp"
#include "workspaces_page.hpp"

#include <QAction>
#include <QCloseEvent>
#include <QMenuBar>
#include <QStatusBar>
#include <QTabWidget>

namespace heirloom::console {

MainWindow::MainWindow(Connection connection, QWidget* parent)
    : QMainWindow(parent), connection_(std::move(connection)) {
    setWindowTitle(tr("Heirloom console — %1").arg(qs(connection_.server.url)));
    setMinimumSize(960, 640);
    resize(1024, 740);
    tabs_ = new QTabWidget(this);
    tabs_->setObjectName(QStringLiteral("tabs"));
    images_ = new ImagesPage(connection_, this);
    workspaces_ = new WorkspacesPage(connection_, this);
    assignments_ = new AssignmentsPage(connection_, this);
    effective_ = new EffectivePage(connection_, this);
    endpoints_ = new EndpointsPage(connection_, this);
    report_ = new ReportPage(connection_, this);
    tabs_->addTab(images_, tr("&1 Images"));
    tabs_->addTab(workspaces_, tr("&2 Workspaces and apps"));
    tabs_->addTab(assignments_, tr("&3 Assignments"));
    tabs_->addTab(effective_, tr("&4 Effective policy"));
    tabs_->addTab(endpoints_, tr("&5 Endpoints"));
    tabs_->addTab(report_, tr("&6 Report"));
    setCentralWidget(tabs_);

    auto* file = menuBar()->addMenu(tr("&File"));
    auto* reload = file->addAction(tr("&Reload this screen"));
    reload->setShortcut(QKeySequence::Refresh);
    connect(reload, &QAction::triggered, this, &MainWindow::refresh_current);
    file->addSeparator();
    auto* log_out = file->addAction(tr("&Log out"));
    log_out->setObjectName(QStringLiteral("log_out"));
    connect(log_out, &QAction::triggered, this, [this] {
        logged_out_ = true;
        close();
    });
    auto* quit = file->addAction(tr("&Quit"));
    quit->setShortcut(QKeySequence::Quit);
    connect(quit, &QAction::triggered, this, &QWidget::close);

    statusBar()->showMessage(
        tr("Logged in as %1 (%2) to %3")
            .arg(qs(connection_.user),
                 qs(connection_.display_name.empty() ? connection_.user : connection_.display_name),
                 qs(connection_.server.url)));

    connect(tabs_, &QTabWidget::currentChanged, this, &MainWindow::refresh_current);
    // A saved workspace appears in the assignments' list, and the other way round.
    connect(workspaces_, &WorkspacesPage::policy_saved, assignments_, &AssignmentsPage::refresh);
    connect(assignments_, &AssignmentsPage::policy_saved, workspaces_, &WorkspacesPage::refresh);
    refresh_current();
}

void MainWindow::closeEvent(QCloseEvent* event) {
    if (images_->pushing() &&
        !confirm(this, tr("Push running"),
                 tr("A push is still running. Stop it and close? Nothing is published."))) {
        event->ignore();
        return;
    }
    if (!session_ended_) {
        // A short call on the way out; a server that does not answer only leaves a token that
        // expires by itself.
        Connection c = connection_;
        c.server.timeout_seconds = 3;
        (void)console::log_out(c);
        session_ended_ = true;
    }
    event->accept();
}

void MainWindow::refresh_current() {
    QWidget* page = tabs_->currentWidget();
    if (page == images_)
        images_->refresh();
    else if (page == workspaces_)
        workspaces_->refresh();
    else if (page == assignments_)
        assignments_->refresh();
    else if (page == endpoints_)
        endpoints_->refresh();
    else if (page == report_)
        report_->refresh();
}

} // namespace heirloom::console
