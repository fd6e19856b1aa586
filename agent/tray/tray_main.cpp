// heirloom-tray: the agent's workspaces, sync progress and warnings in the desktop's tray.
// With no tray host it stays quiet (no windows, no errors), checking now and then whether one
// has appeared.

#include "heirloom/agent/control.hpp"
#include "heirloom/agent/paths.hpp"
#include "heirloom/agent/tray_model.hpp"

#include <QAction>
#include <QApplication>
#include <QIcon>
#include <QMenu>
#include <QPainter>
#include <QPixmap>
#include <QSystemTrayIcon>
#include <QTimer>
#include <cstdio>
#include <set>

using namespace heirloom;
using namespace heirloom::agent;

namespace {

QIcon icon_for(TrayState state) {
    QColor colour = state == TrayState::ok        ? QColor("#2e7d32")
                    : state == TrayState::syncing ? QColor("#1565c0")
                    : state == TrayState::warning ? QColor("#ef6c00")
                    : state == TrayState::error   ? QColor("#c62828")
                                                  : QColor("#757575");
    QPixmap pixmap(64, 64);
    pixmap.fill(Qt::transparent);
    QPainter painter(&pixmap);
    painter.setRenderHint(QPainter::Antialiasing);
    painter.setBrush(colour);
    painter.setPen(Qt::NoPen);
    painter.drawRoundedRect(6, 6, 52, 52, 12, 12);
    painter.setPen(Qt::white);
    QFont font = painter.font();
    font.setPixelSize(40);
    font.setBold(true);
    painter.setFont(font);
    painter.drawText(QRect(6, 6, 52, 52), Qt::AlignCenter, "H");
    return QIcon(pixmap);
}

class Tray : public QObject {
  public:
    explicit Tray(fs::path socket) : socket_(std::move(socket)) {
        timer_.setInterval(5000);
        connect(&timer_, &QTimer::timeout, this, [this] { refresh(); });
        timer_.start();
        refresh();
    }

  private:
    void refresh() {
        if (!QSystemTrayIcon::isSystemTrayAvailable()) {
            if (!said_quiet_) {
                std::fprintf(stderr, "heirloom-tray: no system tray on this desktop; staying "
                                     "quiet\n");
                said_quiet_ = true;
            }
            return;
        }
        if (!icon_)
            create();
        auto answer = call_agent(socket_, {{"command", "status"}}, 5);
        TrayModel m = answer ? tray_model((*answer)["status"], {})
                             : tray_model(Json(), answer.error().message);
        icon_->setIcon(icon_for(m.state));
        icon_->setToolTip(QString::fromStdString(m.summary));
        menu_.clear();
        for (const auto& line : m.lines)
            menu_.addAction(QString::fromStdString(line))->setEnabled(false);
        menu_.addSeparator();
        QAction* sync = menu_.addAction("Sync now");
        sync->setEnabled(m.can_sync);
        connect(sync, &QAction::triggered, this, [this] {
            (void)call_agent(socket_, {{"command", "sync"}}, 5);
            refresh();
        });
        menu_.addAction("Quit", qApp, &QApplication::quit);
        for (const auto& notice : m.notices)
            if (shown_.insert(notice.key).second)
                icon_->showMessage(QString::fromStdString(notice.title),
                                   QString::fromStdString(notice.message), QSystemTrayIcon::Warning,
                                   15000);
    }

    void create() {
        icon_ = new QSystemTrayIcon(this);
        icon_->setContextMenu(&menu_);
        icon_->show();
    }

    fs::path socket_;
    QTimer timer_;
    QMenu menu_;
    QSystemTrayIcon* icon_ = nullptr;
    std::set<std::string> shown_;
    bool said_quiet_ = false;
};

} // namespace

int main(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            std::printf("heirloom-tray: shows your Heirloom workspaces, their sync progress and "
                        "lease warnings in the desktop's tray, with \"Sync now\".\n"
                        "It asks heirloom-agent over its socket every 5 s. Without a tray on "
                        "the desktop it stays quiet.\nUsage: heirloom-tray\n");
            return 0;
        }
        std::fprintf(stderr, "heirloom-tray: unknown argument %s (see --help)\n", argv[i]);
        return 2;
    }
    auto paths = default_paths();
    if (!paths) {
        std::fprintf(stderr, "heirloom-tray: %s\n", paths.error().message.c_str());
        return 2;
    }
    QApplication app(argc, argv);
    app.setApplicationName("heirloom-tray");
    app.setQuitOnLastWindowClosed(false);
    Tray tray(paths->socket());
    return app.exec();
}
