#pragma once

// The endpoints that enrolled: who uses them, when they last reported, which image versions
// they hold and in what state, and their last error. An endpoint can be revoked (after a
// confirmation): its token stops working at once.

#include "admin_api.hpp"

#include <QWidget>

class QLabel;
class QPushButton;
class QTableWidget;

namespace heirloom::console {

class EndpointsPage : public QWidget {
    Q_OBJECT
  public:
    EndpointsPage(Connection connection, QWidget* parent = nullptr);

    void refresh();
    // The endpoints last shown (the images screen counts who runs which version from them).
    const std::vector<Endpoint>& endpoints() const { return endpoints_; }

  Q_SIGNALS:
    void endpoints_loaded();

  private:
    void revoke();

    Connection connection_;
    std::vector<Endpoint> endpoints_;
    QTableWidget* table_;
    QPushButton* revoke_;
    QLabel* status_;
};

} // namespace heirloom::console
