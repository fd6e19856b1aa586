// The admin console driven as an admin would drive it, against a real directory (slapd) and a
// real heirloom-server, on a private Xvfb display: logging in (and failing to, in words), pushing
// an image with progress and cancel, creating a workspace and an app, assigning it to groups,
// the effective policy, an endpoint appearing after enrolment, the report and its CSV export.
// Each screen is saved as build/screenshots/console-<screen>.png for people to look at.
//
// Its own program (Qt Test needs its own QApplication); the test functions run in order and
// share one server, each building on what the one before created.

#include "admin_api.hpp"
#include "assignments_page.hpp"
#include "effective_page.hpp"
#include "endpoints_page.hpp"
#include "images_page.hpp"
#include "login_dialog.hpp"
#include "main_window.hpp"
#include "push.hpp"
#include "report_page.hpp"
#include "reported_apps.hpp"
#include "rollout.hpp"
#include "rollout_chart.hpp"
#include "support/heirloom_server.hpp"
#include "support/images.hpp"
#include "support/slapd.hpp"
#include "support/xvfb.hpp"
#include "workspaces_page.hpp"

#include <QAbstractItemView>
#include <QAction>
#include <QApplication>
#include <QBuffer>
#include <QCheckBox>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QFile>
#include <QImage>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QMessageBox>
#include <QPainter>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QScreen>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTabWidget>
#include <QTableWidget>
#include <QTest>
#include <QThreadPool>
#include <QTimer>
#include <QTreeWidget>
#include <algorithm>
#include <cstdlib>
#include <memory>

using namespace heirloom;
using namespace heirloom::console;

namespace {

constexpr int wait_ms = 20000; // server calls run on worker threads; this bounds each wait

template <class W> W* child(QObject* root, const char* name) {
    return root->findChild<W*>(QString::fromLatin1(name));
}

// Every cell of a table as one string per row ("a|b|c"), for readable comparisons.
QStringList rows(const QTableWidget* table) {
    QStringList out;
    for (int r = 0; r < table->rowCount(); ++r) {
        QStringList cells;
        for (int c = 0; c < table->columnCount(); ++c)
            cells << (table->item(r, c) ? table->item(r, c)->text() : QString());
        out << cells.join(QLatin1Char('|'));
    }
    return out;
}

bool any_row_contains(const QTableWidget* table, const QStringList& parts) {
    for (const QString& row : rows(table)) {
        bool all = true;
        for (const QString& p : parts)
            all = all && row.contains(p);
        if (all)
            return true;
    }
    return false;
}

// Clicks `answer` in the next confirmation box that opens (a modal QMessageBox).
void answer_next_dialog(QMessageBox::StandardButton answer) {
    QTimer::singleShot(100, [answer] {
        for (QWidget* w : QApplication::topLevelWidgets())
            if (auto* box = qobject_cast<QMessageBox*>(w); box && box->isVisible()) {
                box->button(answer)->click();
                return;
            }
        answer_next_dialog(answer); // not open yet
    });
}

void confirm_next_dialog() {
    answer_next_dialog(QMessageBox::Yes);
}

// Counts progress reports and, once the upload has sent `after` objects, cancels the push.
class CancelDuringUpload : public trim::Progress {
  public:
    CancelDuringUpload(std::atomic<bool>& cancel, std::uint64_t after)
        : cancel_(cancel), after_(after) {}
    void update(std::string_view stage, std::uint64_t done, std::uint64_t) override {
        if (stage != "upload")
            return;
        uploaded = std::max(uploaded.load(), done);
        if (done >= after_)
            cancel_ = true;
    }
    std::atomic<std::uint64_t> uploaded{0}; // objects the server accepted before the cancel

  private:
    std::atomic<bool>& cancel_;
    std::uint64_t after_;
};

} // namespace

class ConsoleTests : public QObject {
    Q_OBJECT

  private:
    std::unique_ptr<test::Slapd> slapd_;
    std::unique_ptr<test::HeirloomServer> server_;
    std::unique_ptr<test::TempDir> dir_;
    std::unique_ptr<MainWindow> window_;
    Connection connection_;
    fs::path vhd1_, vhd2_;
    std::uint64_t latest_ = 0; // the newest payroll version, once pushed
    std::string agent_token_;  // of alice's endpoint, once enrolled

    client::ServerOptions options(bool with_ca = true) const {
        return {server_->url(), with_ca ? server_->ca_file().string() : std::string(), 15};
    }

    void screenshot(QWidget* widget, const QString& screen) {
        QApplication::processEvents();
        fs::path dir = test::screenshot_dir();
        fs::create_directories(dir);
        QString file =
            QString::fromStdString((dir / ("console-" + screen.toStdString() + ".png")).string());
        QVERIFY2(widget->grab().save(file), qPrintable("cannot save " + file));
    }

    // Like screenshot, but of the screen under widget, so open popups show too (the widget
    // alone when the platform cannot grab the screen).
    void screenshot_screen(QWidget* widget, const QString& screen, QWidget* popup) {
        QApplication::processEvents();
        QRect area = widget->frameGeometry().united(popup->window()->frameGeometry());
        QPixmap shot =
            widget->screen()->grabWindow(0, area.x(), area.y(), area.width(), area.height());
        if (shot.isNull())
            return screenshot(widget, screen);
        fs::path dir = test::screenshot_dir();
        fs::create_directories(dir);
        QString file =
            QString::fromStdString((dir / ("console-" + screen.toStdString() + ".png")).string());
        QVERIFY2(shot.save(file), qPrintable("cannot save " + file));
    }

    void show_tab(QWidget* page) {
        window_->tabs()->setCurrentWidget(page);
        QApplication::processEvents();
    }

    // Logs in through a LoginDialog, returning the status line's text once the attempt ends.
    QString try_login(LoginDialog& dialog, const QString& url, const QString& ca,
                      const QString& user, const QString& password) {
        dialog.set_server(url, ca, user);
        auto* password_edit = child<QLineEdit>(&dialog, "password");
        password_edit->clear();
        // Typed and sent with Enter, as a person would.
        QTest::keyClicks(password_edit, password);
        auto* button = child<QPushButton>(&dialog, "log_in");
        QTest::keyClick(password_edit, Qt::Key_Return);
        if (!QTest::qWaitFor(
                [&] { return button->isEnabled() || dialog.result() == QDialog::Accepted; },
                wait_ms))
            return QStringLiteral("(no answer)");
        return child<QLabel>(&dialog, "status")->text();
    }

  private Q_SLOTS:
    void initTestCase() {
        slapd_ = std::make_unique<test::Slapd>();
        if (slapd_->state() != test::ServerProcess::State::running)
            QFAIL(slapd_->problem().c_str());
        server_ = std::make_unique<test::HeirloomServer>(*slapd_);
        if (server_->state() != test::ServerProcess::State::running)
            QFAIL(server_->problem().c_str());
        dir_ = std::make_unique<test::TempDir>();
        // Pushes pack into $XDG_CACHE_HOME/heirloom-admin/…: keep the test's apart.
        ::setenv("XDG_CACHE_HOME", (dir_->path() / "cache").c_str(), 1);
        auto disk = test::make_disk(8ull << 20, 24, 7);
        vhd1_ = *dir_ / "golden-v1.vhd";
        test::write_vhd(vhd1_, disk.content, 1);
        test::rewrite_files(disk, 6, 8);
        vhd2_ = *dir_ / "golden-v2.vhd";
        test::write_vhd(vhd2_, disk.content, 2);
    }

    void login_failures_are_explained() {
        LoginDialog dialog;
        dialog.show();
        QString ca = QString::fromStdString(server_->ca_file().string());
        QString url = QString::fromStdString(server_->url());

        // Tab walks the form in reading order: server, CA file, its Browse button, user, password.
        QApplication::setActiveWindow(&dialog);
        dialog.set_server(QString(), QString(), QString());
        QTRY_VERIFY(child<QLineEdit>(&dialog, "server")->hasFocus());
        for (const char* next : {"ca_file", "browse_ca", "user", "password"}) {
            QTest::keyClick(QApplication::focusWidget(), Qt::Key_Tab);
            QVERIFY2(QApplication::focusWidget() == child<QWidget>(&dialog, next), next);
        }

        QString wrong = try_login(dialog, url, ca, "carol", "not-her-password");
        QCOMPARE(wrong, QStringLiteral("Wrong user name or password."));
        QCOMPARE(child<QLineEdit>(&dialog, "password")->echoMode(), QLineEdit::Password);
        screenshot(&dialog, "login");

        QString untrusted = try_login(dialog, url, QString(), "carol", "carol-pw");
        QVERIFY2(untrusted.contains("is not trusted"), qPrintable(untrusted));

        QString down =
            try_login(dialog, QStringLiteral("https://127.0.0.1:%1").arg(test::free_port()), ca,
                      "carol", "carol-pw");
        QVERIFY2(down.contains("cannot be reached"), qPrintable(down));

        QString not_admin = try_login(dialog, url, ca, "alice", "alice-pw");
        QVERIFY2(not_admin.contains("not an administrator"), qPrintable(not_admin));
        QVERIFY(dialog.result() != QDialog::Accepted);
    }

    void login_opens_the_console() {
        LoginDialog dialog;
        dialog.show();
        QString status =
            try_login(dialog, QString::fromStdString(server_->url()),
                      QString::fromStdString(server_->ca_file().string()), "carol", "carol-pw");
        QCOMPARE(dialog.result(), int(QDialog::Accepted));
        QCOMPARE(dialog.connection().user, std::string("carol"));
        QVERIFY(dialog.connection().token.starts_with("s."));
        // The password is gone from the form once the login succeeded.
        QVERIFY(child<QLineEdit>(&dialog, "password")->text().isEmpty());
        connection_ = dialog.connection();
        window_ = std::make_unique<MainWindow>(connection_);
        window_->show();
        QVERIFY(QTest::qWaitForWindowExposed(window_.get()));
        QVERIFY(window_->width() <= 1024 && window_->minimumHeight() <= 768);
        // Alt+digit switches screens.
        QApplication::setActiveWindow(window_.get());
        QTest::keyClick(window_.get(), Qt::Key_4, Qt::AltModifier);
        QCOMPARE(window_->tabs()->currentWidget(), static_cast<QWidget*>(window_->effective()));
        QTest::keyClick(window_.get(), Qt::Key_1, Qt::AltModifier);
        QCOMPARE(window_->tabs()->currentWidget(), static_cast<QWidget*>(window_->images()));
        (void)status;
    }

    void push_shows_progress_and_cancel_publishes_nothing() {
        QVERIFY(window_);
        ImagesPage* page = window_->images();
        show_tab(page);
        QSignalSpy finished(page, &ImagesPage::push_finished);
        auto* bar = child<QProgressBar>(page, "push_progress");
        QStringList stages;
        std::vector<int> values;
        QObject scope; // the connection ends with this test function
        QObject::connect(page, &ImagesPage::progress_shown, &scope,
                         [&](const QString& stage, int value) {
                             stages << stage;
                             values.push_back(value);
                         });
        page->push(QStringLiteral("payroll"), QString::fromStdString(vhd1_.string()));
        QVERIFY(page->pushing());
        QVERIFY(finished.wait(60000));

        QCOMPARE(finished.at(0).at(0).toULongLong(), 1ull);
        QCOMPARE(bar->value(), bar->maximum());
        // The bar showed packing, then uploading, and only ever moved forward.
        QVERIFY2(stages.contains("pack") && stages.contains("upload"),
                 qPrintable(stages.join(',')));
        QVERIFY(stages.indexOf("pack") < stages.lastIndexOf("upload"));
        QVERIFY(std::is_sorted(values.begin(), values.end()));
        QVERIFY(values.back() > 500); // the upload half
        auto* tree = child<QTreeWidget>(page, "images");
        QTRY_VERIFY_WITH_TIMEOUT(tree->topLevelItemCount() == 1 &&
                                     tree->topLevelItem(0)->text(0).contains("latest v1"),
                                 wait_ms);
        QCOMPARE(tree->topLevelItem(0)->childCount(), 1);

        // Cancel from the button: the push stops and nothing is published.
        finished.clear();
        page->push(QStringLiteral("payroll"), QString::fromStdString(vhd2_.string()));
        QTest::mouseClick(child<QPushButton>(page, "cancel_push"), Qt::LeftButton);
        QVERIFY(finished.wait(60000));
        QCOMPARE(finished.at(0).at(0).toULongLong(), 0ull);
        QVERIFY2(finished.at(0).at(1).toString().contains("cancelled"),
                 qPrintable(finished.at(0).at(1).toString()));
        QCOMPARE(child<QLabel>(page, "push_stage")->text(), QStringLiteral("Cancelled."));
        auto images = fetch_images(connection_);
        QVERIFY(images);
        QCOMPARE(images->at(0).latest, 1ull);
        screenshot(window_.get(), "images-cancelled");
    }

    void push_cancelled_during_upload_leaves_the_server_consistent() {
        // The same push code the console runs, cancelled after the first uploaded object: the
        // server keeps what it verified, publishes no version, and the next push completes.
        auto api = client::ApiClient::open(options());
        QVERIFY(api);
        (*api)->set_token(connection_.token);
        std::atomic<bool> cancel{false};
        CancelDuringUpload progress(cancel, 1);
        admin::PushOptions push;
        push.image = "payroll";
        push.vhd = vhd2_;
        push.cache = dir_->path() / "cache" / "direct";
        push.connections = 1;
        push.cancel = &cancel;
        push.progress = &progress;
        auto cancelled = admin::push_image(**api, connection_.token, push);
        QVERIFY(!cancelled);
        QCOMPARE(int(cancelled.error().code), int(Errc::cancelled));
        QVERIFY(progress.uploaded >= 1); // objects reached the server, yet no version did
        auto images = fetch_images(connection_);
        QVERIFY(images);
        QCOMPARE(images->at(0).latest, 1ull);

        // Through the console again: the next push publishes a newer version.
        ImagesPage* page = window_->images();
        QSignalSpy finished(page, &ImagesPage::push_finished);
        child<QComboBox>(page, "push_image")->setEditText(QStringLiteral("payroll"));
        child<QLineEdit>(page, "push_vhd")->setText(QString::fromStdString(vhd2_.string()));
        QTest::mouseClick(child<QPushButton>(page, "push"), Qt::LeftButton);
        QVERIFY(finished.wait(60000));
        quint64 version = finished.at(0).at(0).toULongLong();
        QVERIFY2(version > 1, qPrintable(finished.at(0).at(1).toString()));
        images = fetch_images(connection_);
        QVERIFY(images);
        QCOMPARE(images->at(0).latest, version);
        QCOMPARE(images->at(0).versions.size(), std::size_t{2});
        auto* tree = child<QTreeWidget>(page, "images");
        QTRY_VERIFY_WITH_TIMEOUT(
            tree->topLevelItemCount() == 1 && tree->topLevelItem(0)->childCount() == 2, wait_ms);
    }

    void create_a_workspace_and_an_app() {
        QVERIFY(window_);
        WorkspacesPage* page = window_->workspaces();
        show_tab(page);
        auto* image = child<QComboBox>(page, "workspace_image");
        QTRY_VERIFY_WITH_TIMEOUT(image->findText("payroll") >= 0, wait_ms);
        QTest::mouseClick(child<QPushButton>(page, "new_workspace"), Qt::LeftButton);
        QTest::keyClicks(child<QLineEdit>(page, "workspace_id"), "payroll-ws");
        QTest::keyClicks(child<QLineEdit>(page, "workspace_name"), "Payroll 2004");
        image->setCurrentIndex(image->findText("payroll"));
        QVERIFY(page->workspace_dirty());
        QTest::mouseClick(child<QPushButton>(page, "save_workspace"), Qt::LeftButton);
        auto* list = child<QListWidget>(page, "workspaces");
        QTRY_COMPARE_WITH_TIMEOUT(list->count(), 1, wait_ms);
        QCOMPARE(list->item(0)->text(), QStringLiteral("Payroll 2004 (payroll-ws)"));
        auto policy = fetch_policy(connection_);
        QVERIFY(policy);
        QCOMPARE(policy->set.workspaces.size(), std::size_t{1});
        QCOMPARE(policy->set.workspaces[0].display_name, std::string("Payroll 2004"));
        QCOMPARE(policy->set.workspaces[0].image, std::string("payroll"));

        // An unsaved edit is undone with Revert.
        QTRY_VERIFY_WITH_TIMEOUT(list->currentRow() == 0, wait_ms);
        auto* name = child<QLineEdit>(page, "workspace_name");
        auto* revert = child<QPushButton>(page, "revert_workspace");
        QVERIFY(!revert->isEnabled());
        name->selectAll();
        QTest::keyClicks(name, "Payroll (typo");
        QVERIFY(page->workspace_dirty());
        QVERIFY(revert->isEnabled());
        QTest::mouseClick(revert, Qt::LeftButton);
        QCOMPARE(name->text(), QStringLiteral("Payroll 2004"));
        QVERIFY(!page->workspace_dirty());

        // A published app, typed in.
        QTest::keyClicks(child<QLineEdit>(page, "app_id"), "pay");
        QTest::keyClicks(child<QLineEdit>(page, "app_name"), "Payroll");
        // A Windows program on another drive than the Wine prefix's C: is refused first.
        child<QPlainTextEdit>(page, "app_command")->setPlainText("D:\\Apps\\PAY.EXE\n/s");
        QTest::mouseClick(child<QPushButton>(page, "save_app"), Qt::LeftButton);
        QVERIFY2(child<QLabel>(page, "status")->text().contains("must be on drive C:"),
                 qPrintable(child<QLabel>(page, "status")->text()));
        child<QPlainTextEdit>(page, "app_command")
            ->setPlainText("  C:\\Apps\\Payroll\\PAY.EXE  \n/s\n");
        child<QCheckBox>(page, "app_desktop")->setChecked(true);
        QTest::mouseClick(child<QPushButton>(page, "save_app"), Qt::LeftButton);
        auto* apps = child<QTableWidget>(page, "apps");
        QTRY_VERIFY2_WITH_TIMEOUT(apps->rowCount() == 1,
                                  qPrintable(child<QLabel>(page, "status")->text()), wait_ms);
        policy = fetch_policy(connection_);
        QVERIFY(policy);
        QCOMPARE(policy->set.apps.size(), std::size_t{1});
        QCOMPARE(policy->set.apps[0].command,
                 (std::vector<std::string>{"C:\\Apps\\Payroll\\PAY.EXE", "/s"}));
        QCOMPARE(policy->set.apps[0].workspace_id, std::string("payroll-ws"));
        QCOMPARE(policy->set.apps[0].icon, std::string("pay"));
        QVERIFY(policy->set.apps[0].desktop_shortcut);

        screenshot(window_.get(), "workspaces");

        // The form refuses what the policy library refuses, before anything is sent.
        QTest::mouseClick(child<QPushButton>(page, "new_workspace"), Qt::LeftButton);
        QTest::keyClicks(child<QLineEdit>(page, "workspace_id"), "bad id!");
        QTest::keyClicks(child<QLineEdit>(page, "workspace_name"), "Bad");
        QTest::mouseClick(child<QPushButton>(page, "save_workspace"), Qt::LeftButton);
        QVERIFY2(child<QLabel>(page, "status")->text().contains("workspace.id"),
                 qPrintable(child<QLabel>(page, "status")->text()));
        // Leaving the unsaved new workspace asks first.
        confirm_next_dialog();
        list->setCurrentRow(0);
        QTRY_COMPARE_WITH_TIMEOUT(apps->rowCount(), 1, wait_ms);
        QCOMPARE(child<QLineEdit>(page, "workspace_id")->text(), QStringLiteral("payroll-ws"));
    }

    void assign_the_workspace_to_groups() {
        QVERIFY(window_);
        AssignmentsPage* page = window_->assignments();
        show_tab(page);
        auto* workspace = child<QComboBox>(page, "assignment_workspace");
        QTRY_VERIFY_WITH_TIMEOUT(workspace->findText("payroll-ws") >= 0, wait_ms);

        // finance: clipboard both ways, 48 h offline; found by searching the directory.
        auto assign = [&](const char* search, const char* group, const char* id, int clipboard) {
            QTest::mouseClick(child<QPushButton>(page, "new_assignment"), Qt::LeftButton);
            child<QComboBox>(page, "directory_kind")->setCurrentIndex(0);
            auto* text = child<QLineEdit>(page, "directory_search");
            text->clear();
            QTest::keyClicks(text, search);
            QTest::keyClick(text, Qt::Key_Return);
            auto* found = child<QListWidget>(page, "directory_results");
            QTRY_VERIFY_WITH_TIMEOUT(!found->findItems(group, Qt::MatchStartsWith).isEmpty(),
                                     wait_ms);
            found->setCurrentItem(found->findItems(group, Qt::MatchStartsWith).at(0));
            QTest::mouseClick(child<QPushButton>(page, "use_principal"), Qt::LeftButton);
            QCOMPARE(child<QLineEdit>(page, "principal_name")->text(), QString(group));
            auto* id_edit = child<QLineEdit>(page, "assignment_id");
            id_edit->setText(id);
            workspace->setCurrentIndex(workspace->findText("payroll-ws"));
            child<QComboBox>(page, "clipboard")->setCurrentIndex(clipboard);
            child<QSpinBox>(page, "offline_hours")->setValue(48);
            // Saved with the keyboard: Ctrl+S belongs to the visible screen's Save button.
            QApplication::setActiveWindow(window_.get());
            QTest::keyClick(id_edit, Qt::Key_S, Qt::ControlModifier);
            auto* table = child<QTableWidget>(page, "assignments");
            QTRY_VERIFY_WITH_TIMEOUT(any_row_contains(table, {id, "group " + QString(group)}),
                                     wait_ms);
        };
        assign("fin", "finance", "finance-payroll", 3);
        assign("sta", "staff", "staff-payroll", 0);

        auto policy = fetch_policy(connection_);
        QVERIFY(policy);
        QCOMPARE(policy->set.assignments.size(), std::size_t{2});
        const auto& a = policy->set.assignments[0];
        QCOMPARE(a.id, std::string("finance-payroll"));
        QCOMPARE(a.principal.name, std::string("finance"));
        QVERIFY(a.principal.kind == policy::PrincipalKind::group);
        QVERIFY(a.controls.clipboard == policy::DataFlow::both);
        QCOMPARE(a.offline_limit, std::int64_t{48 * 3600});
        screenshot(window_.get(), "assignments");
    }

    void effective_policy_names_the_deciding_assignment() {
        QVERIFY(window_);
        EffectivePage* page = window_->effective();
        show_tab(page);
        auto* user = child<QLineEdit>(page, "effective_user");
        QTest::keyClicks(user, "alice");
        QTest::keyClick(user, Qt::Key_Return);
        auto* table = child<QTableWidget>(page, "effective_controls");
        QTRY_VERIFY_WITH_TIMEOUT(table->rowCount() > 0, wait_ms);
        // alice is in finance (clipboard both) and staff (clipboard off): staff decides.
        QVERIFY2(any_row_contains(table, {"payroll-ws", "clipboard", "off", "staff-payroll"}),
                 qPrintable(rows(table).join('\n')));
        QVERIFY(child<QLabel>(page, "effective_groups")->text().contains("finance"));
        screenshot(window_.get(), "effective");
    }

    void endpoint_appears_after_enrolment() {
        QVERIFY(window_);
        auto api = client::ApiClient::open(options());
        QVERIFY(api);
        auto enrolled = (*api)->post(
            "/v1/enrol", {{"user", "alice"}, {"password", "alice-pw"}, {"hostname", "pc-alice"}});
        QVERIFY2(enrolled, enrolled ? "" : enrolled.error().message.c_str());
        auto agent = client::ApiClient::open(options());
        QVERIFY(agent);
        agent_token_ = (*enrolled)["agent_token"].get<std::string>();
        (*agent)->set_token(agent_token_);
        std::int64_t now = std::time(nullptr);
        // A cancelled push may have taken a version number: the latest is whatever it is now.
        auto images = fetch_images(connection_);
        QVERIFY(images);
        latest_ = images->at(0).latest;
        auto reported = (*agent)->post(
            "/v1/agent/events",
            {{"events",
              {{{"type", "sync-done"}, {"time", now - 600}, {"image", "payroll"}, {"version", 1}},
               {{"type", "launch-failed"},
                {"time", now - 60},
                {"workspace", "payroll-ws"},
                {"message", "the VM did not start"}},
               {{"type", "sync-done"},
                {"time", now - 30},
                {"image", "payroll"},
                {"version", latest_}}}}});
        QVERIFY2(reported, reported ? "" : reported.error().message.c_str());

        EndpointsPage* page = window_->endpoints();
        show_tab(page);
        auto* table = child<QTableWidget>(page, "endpoints");
        QString version = QStringLiteral("payroll v%1").arg(latest_);
        QTRY_VERIFY_WITH_TIMEOUT(any_row_contains(table, {"pc-alice", "alice", version, "sync-done",
                                                          "the VM did not start"}),
                                 wait_ms);
        screenshot(window_.get(), "endpoints");
    }

    // The apps a guest reported for the workspace's image are offered in the app form, with
    // their icons; picking one fills the form, and the published app shows the icon.
    void guest_reported_apps_are_offered() {
        QVERIFY(window_);
        QVERIFY(!agent_token_.empty());
        QImage image(48, 48, QImage::Format_ARGB32);
        image.fill(Qt::transparent);
        {
            QPainter paint(&image);
            paint.setBrush(QColor(0x1f, 0x6f, 0xd0));
            paint.drawRoundedRect(4, 4, 40, 40, 8, 8);
            paint.setPen(Qt::white);
            paint.drawText(image.rect(), Qt::AlignCenter, QStringLiteral("$"));
        }
        QByteArray png;
        QBuffer buffer(&png);
        buffer.open(QIODevice::WriteOnly);
        QVERIFY(image.save(&buffer, "PNG"));
        Json apps = Json::array();
        apps.push_back({{"id", "payroll"},
                        {"name", "Payroll"},
                        {"command", "C:\\Apps\\Payroll\\PAYROLL.EXE"},
                        {"file_types", {"application/x-payroll", "text/csv"}},
                        {"icon_png_base64", png.toBase64().toStdString()}});
        apps.push_back({{"id", "clock"},
                        {"name", "Clock"},
                        {"command", "/usr/bin/xclock -digital %U"},
                        {"file_types", Json::array()}});
        auto agent = client::ApiClient::open(options());
        QVERIFY(agent);
        (*agent)->set_token(agent_token_);
        auto reported =
            (*agent)->put("/v1/agent/images/payroll/versions/" + std::to_string(latest_) + "/apps",
                          {{"apps", apps}});
        QVERIFY2(reported, reported ? "" : reported.error().message.c_str());

        WorkspacesPage* page = window_->workspaces();
        show_tab(page);
        page->refresh();
        auto* offered = child<QComboBox>(page, "guest_apps");
        QVERIFY(offered);
        QTRY_COMPARE_WITH_TIMEOUT(offered->count(), 3, wait_ms);
        QVERIFY(offered->itemText(1).contains("Payroll"));
        QVERIFY(offered->itemText(1).contains("C:\\Apps\\Payroll\\PAYROLL.EXE"));
        QVERIFY(!offered->itemIcon(1).isNull());
        QVERIFY(offered->itemIcon(2).isNull());

        // A new app, picked from the list with the keyboard.
        QTest::mouseClick(child<QPushButton>(page, "new_app"), Qt::LeftButton);
        QVERIFY(offered->isEnabled());
        offered->setFocus();
        QTest::keyClick(offered, Qt::Key_Down);
        QCOMPARE(child<QLineEdit>(page, "app_id")->text(), QStringLiteral("payroll"));
        QCOMPARE(child<QLineEdit>(page, "app_name")->text(), QStringLiteral("Payroll"));
        QCOMPARE(child<QPlainTextEdit>(page, "app_command")->toPlainText(),
                 QStringLiteral("C:\\Apps\\Payroll\\PAYROLL.EXE"));
        QCOMPARE(child<QLineEdit>(page, "app_icon")->text(), QStringLiteral("payroll"));
        QCOMPARE(child<QLineEdit>(page, "app_types")->text(),
                 QStringLiteral("application/x-payroll, text/csv"));
        // The admin may still change what was filled in.
        auto* name = child<QLineEdit>(page, "app_name");
        name->selectAll();
        QTest::keyClicks(name, "Payroll (Windows)");
        QTest::mouseClick(child<QPushButton>(page, "save_app"), Qt::LeftButton);
        auto* table = child<QTableWidget>(page, "apps");
        QTRY_VERIFY2_WITH_TIMEOUT(any_row_contains(table, {"Payroll (Windows)", "payroll"}),
                                  qPrintable(child<QLabel>(page, "status")->text()), wait_ms);
        auto policy = fetch_policy(connection_);
        QVERIFY(policy);
        auto saved = std::find_if(policy->set.apps.begin(), policy->set.apps.end(),
                                  [](const auto& a) { return a.id == "payroll"; });
        QVERIFY(saved != policy->set.apps.end());
        QCOMPARE(saved->command, std::vector<std::string>{"C:\\Apps\\Payroll\\PAYROLL.EXE"});
        QCOMPARE(saved->icon, std::string("payroll"));
        QCOMPARE(saved->file_types,
                 (std::vector<std::string>{"application/x-payroll", "text/csv"}));
        QCOMPARE(saved->workspace_id, std::string("payroll-ws"));

        // The published app shows the guest's icon; one typed by hand (pay) has none.
        QTRY_VERIFY_WITH_TIMEOUT(offered->count() == 3, wait_ms);
        int with_icon = -1, without = -1;
        for (int r = 0; r < table->rowCount(); ++r) {
            if (table->item(r, 1)->text() == QStringLiteral("payroll"))
                with_icon = r;
            if (table->item(r, 1)->text() == QStringLiteral("pay"))
                without = r;
        }
        QVERIFY(with_icon >= 0 && without >= 0);
        QTRY_VERIFY_WITH_TIMEOUT(!table->item(with_icon, 0)->icon().isNull(), wait_ms);
        QVERIFY(table->item(without, 0)->icon().isNull());

        // An X11 app's command becomes one argument per line, its field codes gone.
        QTest::mouseClick(child<QPushButton>(page, "new_app"), Qt::LeftButton);
        offered->setFocus();
        QTest::keyClick(offered, Qt::Key_Down);
        QTest::keyClick(offered, Qt::Key_Down);
        QCOMPARE(child<QLineEdit>(page, "app_id")->text(), QStringLiteral("clock"));
        QCOMPARE(child<QPlainTextEdit>(page, "app_command")->toPlainText(),
                 QStringLiteral("/usr/bin/xclock\n-digital"));
        // Leave the form as it was: the unsaved pick is dropped.
        QTest::mouseClick(child<QPushButton>(page, "revert_app"), Qt::LeftButton);

        // The offered list, open, as the admin sees it (a popup: grabbed from the screen).
        QTest::mouseClick(child<QPushButton>(page, "new_app"), Qt::LeftButton);
        offered->showPopup();
        QTRY_VERIFY(offered->view()->isVisible());
        QTest::qWait(200);
        screenshot_screen(window_.get(), "guest-apps", offered->view());
        offered->hidePopup();
    }

    void split_guest_commands() {
        using V = std::vector<std::string>;
        QCOMPARE(split_guest_command("C:\\Apps\\Payroll\\PAYROLL.EXE"),
                 V{"C:\\Apps\\Payroll\\PAYROLL.EXE"});
        QCOMPARE(split_guest_command("C:\\Apps\\Payroll\\PAY.EXE /s"),
                 (V{"C:\\Apps\\Payroll\\PAY.EXE", "/s"}));
        QCOMPARE(split_guest_command("C:\\Program Files\\Pay Roll\\PAY.EXE /s /q"),
                 (V{"C:\\Program Files\\Pay Roll\\PAY.EXE", "/s", "/q"}));
        QCOMPARE(split_guest_command("\"C:\\Program Files\\Pay\\PAY.EXE\" %f"),
                 V{"C:\\Program Files\\Pay\\PAY.EXE"});
        QCOMPARE(split_guest_command("\"C:\\\\Apps\\\\X.EXE\""), V{"C:\\Apps\\X.EXE"});
        QCOMPARE(split_guest_command("  /usr/bin/xterm\t-e  \"echo \\\"hi\\\"\" %U "),
                 (V{"/usr/bin/xterm", "-e", "echo \"hi\""}));
        QCOMPARE(split_guest_command("printf 100%% \"%f\""), (V{"printf", "100%", "%f"}));
        QCOMPARE(split_guest_command("C:\\Apps\\NoProgram here"),
                 (V{"C:\\Apps\\NoProgram", "here"}));
        QCOMPARE(split_guest_command(""), V{});
        QCOMPARE(split_guest_command("\"unterminated"), V{"unterminated"});
    }

    void report_filters_exports_and_charts() {
        QVERIFY(window_);
        ReportPage* page = window_->report();
        QSignalSpy loaded(page, &ReportPage::report_loaded);
        show_tab(page);
        auto* table = child<QTableWidget>(page, "events");
        QVERIFY(loaded.wait(wait_ms));
        QCOMPARE(table->rowCount(), 3);
        auto* type = child<QComboBox>(page, "event_type");
        type->setCurrentIndex(type->findText("launch-failed"));
        QTest::mouseClick(child<QPushButton>(page, "show_events"), Qt::LeftButton);
        QVERIFY(loaded.wait(wait_ms));
        QCOMPARE(table->rowCount(), 1);
        QVERIFY(any_row_contains(table,
                                 {"alice", "pc-alice", "launch-failed", "the VM did not start"}));

        QSignalSpy exported(page, &ReportPage::exported);
        QString file = QString::fromStdString((dir_->path() / "events.csv").string());
        page->export_csv(file);
        QVERIFY(exported.wait(wait_ms));
        QCOMPARE(exported.at(0).at(0).toBool(), true);
        QFile csv(file);
        QVERIFY(csv.open(QIODevice::ReadOnly));
        QStringList lines = QString::fromUtf8(csv.readAll()).split("\r\n", Qt::SkipEmptyParts);
        QCOMPARE(lines.size(), 2); // the header and the one filtered event
        QVERIFY(lines[0].startsWith("id,received,time,user,endpoint,hostname,type"));
        QVERIFY(lines[1].contains("launch-failed"));

        // The chart: pc-alice held version 1, then version 2.
        auto* chart = child<RolloutChart>(page, "rollout_chart");
        QCOMPARE(chart->points().size(), std::size_t{2});
        QCOMPARE(chart->points()[0].endpoints_per_version.at(1), 1);
        QCOMPARE(chart->points()[1].endpoints_per_version.count(1), std::size_t{0});
        QCOMPARE(chart->points()[1].endpoints_per_version.at(latest_), 1);
        type->setCurrentIndex(0);
        QTest::mouseClick(child<QPushButton>(page, "show_events"), Qt::LeftButton);
        QVERIFY(loaded.wait(wait_ms));
        screenshot(window_.get(), "report");
    }

    void images_show_who_runs_which_version() {
        QVERIFY(window_);
        ImagesPage* page = window_->images();
        QSignalSpy loaded(page, &ImagesPage::images_loaded);
        show_tab(page);
        QVERIFY(loaded.wait(wait_ms));
        auto* tree = child<QTreeWidget>(page, "images");
        QCOMPARE(tree->topLevelItemCount(), 1);
        QTreeWidgetItem* newest = tree->topLevelItem(0)->child(0);

        QCOMPARE(newest->text(5), QStringLiteral("pc-alice"));
        QCOMPARE(tree->topLevelItem(0)->child(1)->text(5), QStringLiteral("none"));

        // Pin the image to version 1: endpoints stay on it.
        tree->setCurrentItem(tree->topLevelItem(0)->child(1));
        QCOMPARE(child<QLabel>(page, "settings_image")->text(), QStringLiteral("payroll"));
        child<QSpinBox>(page, "pinned_version")->setValue(1);
        QTest::mouseClick(child<QPushButton>(page, "save_settings"), Qt::LeftButton);
        QTRY_VERIFY_WITH_TIMEOUT(tree->topLevelItemCount() == 1 &&
                                     tree->topLevelItem(0)->text(0).contains("pinned to v1"),
                                 wait_ms);
        auto policy = fetch_policy(connection_);
        QVERIFY(policy);
        QCOMPARE(policy->set.images.size(), std::size_t{1});
        QCOMPARE(policy->set.images[0].pinned_version, std::optional<std::uint64_t>(1));
        QVERIFY(!policy->set.images[0].minimum_version);
        screenshot(window_.get(), "images");
    }

    void revoking_an_endpoint_asks_first() {
        QVERIFY(window_);
        EndpointsPage* page = window_->endpoints();
        show_tab(page);
        auto* table = child<QTableWidget>(page, "endpoints");
        QTRY_VERIFY_WITH_TIMEOUT(table->rowCount() == 1, wait_ms);
        table->selectRow(0);
        auto* revoke = child<QPushButton>(page, "revoke_endpoint");
        QVERIFY(revoke->isEnabled());
        // Cancel keeps the endpoint.
        answer_next_dialog(QMessageBox::Cancel);
        QTest::mouseClick(revoke, Qt::LeftButton);
        // Had the click gone ahead, the revoke would be on the pool by now: let it finish.
        QVERIFY(QThreadPool::globalInstance()->waitForDone(wait_ms));
        auto kept = fetch_endpoints(connection_);
        QVERIFY(kept);
        QVERIFY(!kept->at(0).revoked);
        table->selectRow(0);
        confirm_next_dialog();
        QTest::mouseClick(revoke, Qt::LeftButton);
        QTRY_VERIFY_WITH_TIMEOUT(any_row_contains(table, {"pc-alice", "revoked"}), wait_ms);
        auto endpoints = fetch_endpoints(connection_);
        QVERIFY(endpoints);
        QVERIFY(endpoints->at(0).revoked);
    }

    void log_out_ends_the_session() {
        QVERIFY(window_);
        auto* log_out = window_->findChild<QAction*>("log_out");
        QVERIFY(log_out);
        log_out->trigger();
        QVERIFY(window_->logged_out());
        QTRY_VERIFY_WITH_TIMEOUT(!window_->isVisible(), wait_ms);
        auto after = fetch_endpoints(connection_);
        QVERIFY(!after);
        QCOMPARE(int(after.error().code), int(Errc::crypto)); // 401: the token is dead
    }

    void cleanupTestCase() {
        window_.reset();
        server_.reset();
        slapd_.reset();
    }
};

int main(int argc, char** argv) {
    // A dialog nobody expected would wait for a click forever: end such a test in a minute.
    ::setenv("QTEST_FUNCTION_TIMEOUT", "60000", 0);
    // A private X display, so screenshots show what a person would see; offscreen only when
    // Xvfb is missing (the screenshots are then drawn by Qt alone).
    test::Xvfb xvfb(1280, 900);
    if (xvfb.running()) {
        ::setenv("DISPLAY", xvfb.display().c_str(), 1);
        ::setenv("QT_QPA_PLATFORM", "xcb", 1);
    } else {
        std::fprintf(stderr, "Xvfb did not start (%s); using the offscreen platform\n",
                     xvfb.error().c_str());
        ::setenv("QT_QPA_PLATFORM", "offscreen", 1);
    }
    QApplication app(argc, argv);
    ConsoleTests tests;
    return QTest::qExec(&tests, argc, argv);
}

#include "console_tests.moc"
