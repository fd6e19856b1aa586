#pragma once

// A user's effective policy as the server evaluates it now: every workspace they get, each
// control's value and the assignment that decided it ("why does Bob get clipboard off?").

#include "admin_api.hpp"

#include <QWidget>

class QLabel;
class QLineEdit;
class QTableWidget;

namespace heirloom::console {

class EffectivePage : public QWidget {
    Q_OBJECT
  public:
    EffectivePage(Connection connection, QWidget* parent = nullptr);

    // Asks the server for user's effective policy and shows it.
    void show_user(const QString& user);

  private:
    Connection connection_;
    QLineEdit* user_;
    QLabel* groups_;
    QTableWidget* controls_;
    QLabel* status_;
};

} // namespace heirloom::console
