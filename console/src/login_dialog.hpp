#pragma once

// The first screen: server address, the CA to trust (the system's store by default), the
// admin's directory user name and password. The login runs on a worker thread; a failure
// stays on screen in words (wrong password, server unreachable, certificate not trusted).

#include "admin_api.hpp"

#include <QDialog>

class QLabel;
class QLineEdit;
class QPushButton;

namespace heirloom::console {

class LoginDialog : public QDialog {
    Q_OBJECT
  public:
    explicit LoginDialog(QWidget* parent = nullptr);

    // Pre-fills the form (from the command line or the last login).
    void set_server(const QString& url, const QString& ca_file, const QString& user);
    // The session once the dialog has been accepted.
    const Connection& connection() const { return connection_; }

  private:
    void log_in();
    void choose_ca_file();

    QLineEdit* server_;
    QLineEdit* ca_file_;
    QLineEdit* user_;
    QLineEdit* password_;
    QPushButton* log_in_button_;
    QLabel* status_;
    Connection connection_;
};

} // namespace heirloom::console
