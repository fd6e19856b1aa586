#include "login_dialog.hpp"

#include "ui_support.hpp"

#include <QDialogButtonBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QVBoxLayout>

namespace heirloom::console {

LoginDialog::LoginDialog(QWidget* parent) : QDialog(parent) {
    setWindowTitle(tr("Heirloom console — log in"));
    setMinimumWidth(520);
    server_ = new QLineEdit(this);
    server_->setObjectName(QStringLiteral("server"));
    server_->setPlaceholderText(QStringLiteral("https://heirloom.example.org:8443"));
    ca_file_ = new QLineEdit(this);
    ca_file_->setObjectName(QStringLiteral("ca_file"));
    ca_file_->setPlaceholderText(tr("the system's trusted certificates"));
    auto* browse = new QPushButton(tr("&Browse…"), this);
    browse->setObjectName(QStringLiteral("browse_ca"));
    connect(browse, &QPushButton::clicked, this, &LoginDialog::choose_ca_file);
    auto* ca_row = new QHBoxLayout;
    ca_row->addWidget(ca_file_, 1);
    ca_row->addWidget(browse);
    user_ = new QLineEdit(this);
    user_->setObjectName(QStringLiteral("user"));
    password_ = new QLineEdit(this);
    password_->setObjectName(QStringLiteral("password"));
    password_->setEchoMode(QLineEdit::Password);

    auto* form = new QFormLayout;
    form->addRow(tr("&Server:"), server_);
    add_row(form, tr("&CA file:"), ca_row, ca_file_);
    form->addRow(tr("&User:"), user_);
    form->addRow(tr("&Password:"), password_);

    status_ = status_line(this);
    status_->setMinimumHeight(status_->fontMetrics().height() * 3);

    auto* buttons = new QDialogButtonBox(this);
    log_in_button_ = buttons->addButton(tr("&Log in"), QDialogButtonBox::AcceptRole);
    log_in_button_->setObjectName(QStringLiteral("log_in"));
    log_in_button_->setDefault(true);
    buttons->addButton(QDialogButtonBox::Cancel);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
    // The accept role would close the dialog at once; the login decides instead.
    disconnect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
    connect(log_in_button_, &QPushButton::clicked, this, &LoginDialog::log_in);

    auto* layout = new QVBoxLayout(this);
    layout->addLayout(form);
    layout->addWidget(status_);
    layout->addWidget(buttons);
    setTabOrder(server_, ca_file_);
    setTabOrder(ca_file_, browse);
    setTabOrder(browse, user_);
    setTabOrder(user_, password_);
}

void LoginDialog::set_server(const QString& url, const QString& ca_file, const QString& user) {
    server_->setText(url);
    ca_file_->setText(ca_file);
    user_->setText(user);
    (url.isEmpty() ? server_ : user.isEmpty() ? user_ : password_)->setFocus();
}

void LoginDialog::choose_ca_file() {
    QString file = QFileDialog::getOpenFileName(this, tr("CA certificate"), QString(),
                                                tr("Certificates (*.pem *.crt);;All files (*)"));
    if (!file.isEmpty())
        ca_file_->setText(file);
}

void LoginDialog::log_in() {
    client::ServerOptions server{ss(server_->text().trimmed()), ss(ca_file_->text().trimmed()), 15};
    std::string user = ss(user_->text().trimmed());
    std::string password = ss(password_->text());
    if (server.url.empty())
        return show_error(status_, {Errc::invalid_argument, "Enter the server's address."});
    log_in_button_->setEnabled(false);
    show_news(status_, tr("Logging in to %1…").arg(qs(server.url)));
    run_in_background(
        this, [server, user, password] { return console::log_in(server, user, password); },
        [this](Result<Connection> result) {
            log_in_button_->setEnabled(true);
            if (!result) {
                show_error(status_, result.error());
                password_->selectAll();
                password_->setFocus();
                return;
            }
            password_->clear();
            connection_ = std::move(*result);
            accept();
        });
}

} // namespace heirloom::console
