// heirloom-console: the admin policy console. The password is asked in the login window only;
// it is never taken from the command line.

#include "login_dialog.hpp"
#include "main_window.hpp"

#include <QApplication>
#include <QCommandLineParser>

int main(int argc, char** argv) {
    QApplication app(argc, argv);
    QApplication::setApplicationName(QStringLiteral("heirloom-console"));
    QApplication::setOrganizationName(QStringLiteral("heirloom"));
    QCommandLineParser args;
    args.setApplicationDescription(QStringLiteral("Heirloom admin policy console"));
    args.addHelpOption();
    QCommandLineOption server({QStringLiteral("s"), QStringLiteral("server")},
                              QStringLiteral("The server's address (https://HOST:PORT)."),
                              QStringLiteral("URL"));
    QCommandLineOption ca_file(QStringLiteral("ca-file"),
                               QStringLiteral("Trust this CA instead of the system's."),
                               QStringLiteral("FILE"));
    QCommandLineOption user({QStringLiteral("u"), QStringLiteral("user")},
                            QStringLiteral("Your directory user name."), QStringLiteral("NAME"));
    args.addOptions({server, ca_file, user});
    args.process(app);

    QString url = args.value(server), ca = args.value(ca_file), name = args.value(user);
    for (;;) {
        heirloom::console::LoginDialog login;
        login.set_server(url, ca, name);
        if (login.exec() != QDialog::Accepted)
            return 0;
        heirloom::console::MainWindow window(login.connection());
        window.show();
        int status = QApplication::exec();
        if (!window.logged_out())
            return status;
        // Log out: the next login starts from the same server and user.
        url = QString::fromStdString(login.connection().server.url);
        ca = QString::fromStdString(login.connection().server.ca_file);
        name = QString::fromStdString(login.connection().user);
    }
}
